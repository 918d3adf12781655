"""The ledger's result codes.

Like TigerBeetle's, they have a documented order: when a transfer breaks several
rules, the one reported is the first in ``RESULT_ORDER``. Callers can therefore
rely on, say, ``account_frozen`` being reported before ``insufficient_funds``
for a frozen, empty wallet. Group-level codes come first, then the checks of a
single transfer from the cheapest (its own fields) to the ones that need state
(accounts, holds, balances).
"""

from __future__ import annotations

from purse.errors import RequestError
from purse.money.errors import AmountNotPositive, AmountOutOfRange


class LedgerError(RequestError):
    """A transfer or group the ledger refused; nothing was written."""

    status = 422


class TransferGroupEmpty(LedgerError):
    code = "transfer_group_empty"
    title = "Empty transfer group"
    detail = "A transfer group needs at least one transfer."


class TransferGroupTooLarge(LedgerError):
    code = "transfer_group_too_large"
    title = "Transfer group too large"
    detail = "A transfer group may hold at most {size_max} transfer."
    detail_plural = "A transfer group may hold at most {size_max} transfers."
    count_field = "size_max"


class IdempotencyKeyReused(LedgerError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused"
    detail = "This idempotency key was already used for a different request."
    next_step = "Use a new key for a new request; reuse a key only to retry the same request."


class IdempotencyKeyInvalid(LedgerError):
    code = "idempotency_key_invalid"
    title = "Idempotency key not valid"
    detail = "An idempotency key needs a scope and 1 to {length_max} printable character."
    detail_plural = "An idempotency key needs a scope and 1 to {length_max} printable characters."
    count_field = "length_max"
    next_step = "Use a new UUID for each request."


class TransferDatedInClosedMonth(LedgerError):
    code = "transfer_dated_in_closed_month"
    status = 409
    title = "Month already closed"
    detail = (
        "A transfer cannot be dated on or before {closed_at}: the balances up to then are closed."
    )


class LinkedTransferFailed(LedgerError):
    code = "linked_transfer_failed"
    title = "Linked transfer failed"
    detail = "Another transfer of the same group failed, so none was made."


class TransferFieldsInvalid(LedgerError):
    code = "transfer_fields_invalid"
    title = "Transfer field not valid"
    detail = "The transfer field {field} is not valid: {reason}."


class HoldTimeoutInvalid(LedgerError):
    code = "hold_timeout_invalid"
    title = "Hold expiry not valid"
    detail = "A hold must expire between 1 second and {timeout_seconds_max} second from now."
    detail_plural = (
        "A hold must expire between 1 second and {timeout_seconds_max} seconds from now."
    )
    count_field = "timeout_seconds_max"


class AccountsMustBeDifferent(LedgerError):
    code = "accounts_must_be_different"
    title = "Same account on both sides"
    detail = "Money cannot move from an account to itself."


class DebitAccountNotFound(LedgerError):
    code = "debit_account_not_found"
    status = 404
    title = "Account to pay from not found"
    detail = "The account to take the money from does not exist."


class CreditAccountNotFound(LedgerError):
    code = "credit_account_not_found"
    status = 404
    title = "Account to pay into not found"
    detail = "The account to pay into does not exist."


class PendingTransferNotFound(LedgerError):
    code = "pending_transfer_not_found"
    status = 404
    title = "Hold not found"
    detail = "There is no hold with this id."


class PendingTransferAlreadyPosted(LedgerError):
    code = "pending_transfer_already_posted"
    status = 409
    title = "Hold already completed"
    detail = "This hold was already completed."


class PendingTransferAlreadyVoided(LedgerError):
    code = "pending_transfer_already_voided"
    status = 409
    title = "Hold already released"
    detail = "This hold was already released."


class PendingTransferAlreadyExpired(LedgerError):
    code = "pending_transfer_already_expired"
    status = 409
    title = "Hold already expired"
    detail = "This hold already expired and its money was released."


class PendingTransferExpired(LedgerError):
    code = "pending_transfer_expired"
    status = 409
    title = "Hold expired"
    detail = "This hold has expired; its money is being released."


class PendingTransferNotExpired(LedgerError):
    code = "pending_transfer_not_expired"
    status = 409
    title = "Hold not expired yet"
    detail = "This hold has not expired yet."


class AssetMismatch(LedgerError):
    code = "asset_mismatch"
    title = "Assets do not match"
    detail = "Both accounts and the transfer must be in the same asset."


class ReversalTargetNotFound(LedgerError):
    code = "reversal_target_not_found"
    status = 404
    title = "Transfer to reverse not found"
    detail = "The transfer to reverse does not exist."


class ReversalTargetNotPosted(LedgerError):
    code = "reversal_target_not_posted"
    status = 409
    title = "Transfer not completed"
    detail = "Only completed transfers can be reversed."


class ReversalExceedsOriginal(LedgerError):
    code = "reversal_exceeds_original"
    status = 409
    title = "Reversal larger than the original"
    # The ledger knows no asset's scale, so what is left is counted in minor units.
    detail = "Reversals may not exceed the original amount; {remaining} minor unit remains."
    detail_plural = "Reversals may not exceed the original amount; {remaining} minor units remain."
    count_field = "remaining"


class AccountClosed(LedgerError):
    code = "account_closed"
    status = 409
    title = "Account closed"
    detail = "The account is closed."
    next_step = "Contact purse support if you did not close it."


class AccountFrozen(LedgerError):
    code = "account_frozen"
    status = 409
    title = "Account frozen"
    detail = "The account is frozen; money cannot leave it until support unfreezes it."
    next_step = "Contact purse support to find out why and to unfreeze it."


class ExceedsPendingAmount(LedgerError):
    code = "exceeds_pending_amount"
    status = 409
    title = "Amount larger than the hold"
    detail = "The amount is larger than the hold."


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    status = 409
    title = "Insufficient funds"
    detail = "There is not enough money in the account."
    next_step = "Top up your wallet, or send a smaller amount."
    retryable = True  # after a top-up, the same request can succeed


class BalanceOverflow(LedgerError):
    code = "balance_overflow"
    status = 409
    title = "Balance too large"
    detail = "The account's totals would exceed the largest amount the ledger stores."


class AccountNotFound(LedgerError):
    code = "account_not_found"
    status = 404
    title = "Account not found"
    detail = "The account does not exist."


class AccountStatusInvalid(LedgerError):
    code = "account_status_invalid"
    status = 409
    title = "Account status change refused"
    detail = "The account cannot change from {current} to {requested}."


class AccountNotEmpty(LedgerError):
    code = "account_not_empty"
    status = 409
    title = "Account not empty"
    detail = "An account can be closed only when its balance is zero and no hold is open."


RESULT_ORDER: tuple[type[RequestError], ...] = (
    TransferGroupEmpty,
    TransferGroupTooLarge,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    # A whole batch is dated at once, so this refuses every group of it alike.
    TransferDatedInClosedMonth,
    LinkedTransferFailed,
    TransferFieldsInvalid,
    AmountNotPositive,
    AmountOutOfRange,
    HoldTimeoutInvalid,
    AccountsMustBeDifferent,
    # A resolution's accounts come from its hold, a reversal's from the original,
    # so those are looked up before the accounts.
    PendingTransferNotFound,
    ReversalTargetNotFound,
    DebitAccountNotFound,
    CreditAccountNotFound,
    PendingTransferAlreadyPosted,
    PendingTransferAlreadyVoided,
    PendingTransferAlreadyExpired,
    PendingTransferExpired,
    PendingTransferNotExpired,
    ReversalTargetNotPosted,
    AssetMismatch,
    AccountClosed,
    AccountFrozen,
    ExceedsPendingAmount,
    ReversalExceedsOriginal,
    InsufficientFunds,
    BalanceOverflow,
)
