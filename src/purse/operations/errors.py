"""Errors every money operation can meet, whichever domain makes it."""

from __future__ import annotations

from purse.errors import RequestError
from purse.i18n import N_


class OperationError(RequestError):
    status = 422


class IdempotencyKeyMissing(OperationError):
    code = "idempotency_key_missing"
    status = 400
    title = "Idempotency key missing"
    detail = "Requests that move money need an Idempotency-Key header."
    next_step = "Send a unique key (a UUID) with each new request, and the same key when retrying."


class LimitExceeded(OperationError):
    code = "limit_exceeded"
    status = 409
    title = "Limit exceeded"
    detail = "This would go over your {period} limit of {limit}; {remaining} is left."
    next_step = (
        "Send a smaller amount, wait until the limit resets, or verify your identity "
        "to raise your limits."
    )
    field_words = {
        "period": {
            "per_transfer": N_("per-transfer"),
            "per_day": N_("daily"),
            "per_month": N_("monthly"),
        }
    }
    amount_fields = ("limit", "remaining")


class OperationNotFound(OperationError):
    code = "operation_not_found"
    status = 404
    title = "Transaction not found"
    detail = "There is no transaction with this reference in your wallet."
    next_step = "Check the reference on your receipt."


class AssetNotOffered(OperationError):
    code = "asset_not_offered"
    title = "Currency not offered"
    detail = "This wallet does not hold {asset}."
    next_step = "Choose one of the currencies listed in your wallet."
