"""The wallet's failure catalogue.

Each reason a wallet operation can fail has a stable ``code``, an English
message (translated into zh-CN by the catalog), the next step the user can take,
and whether retrying the same request can help. The catalogue a client sees
(``GET /v1/wallet/failure-reasons``) is these classes plus the ledger's,
funding's and money's errors that wallet operations can raise (``CATALOGUE``).

A refused operation writes nothing. A top-up or withdrawal that a bank declines
later is kept, as a failed operation with the reason, so the user can see it.
"""

from __future__ import annotations

from purse.errors import PurseError, RequestError
from purse.funding import errors as funding
from purse.i18n import N_
from purse.ledger import errors as ledger
from purse.money import errors as money
from purse.operations import errors as operations


class WalletError(RequestError):
    status = 422


class RecipientNotFound(WalletError):
    code = "recipient_not_found"
    status = 404
    title = "Recipient not found"
    detail = "No purse account matches {recipient!r}."
    next_step = "Check the phone number, email or handle with the person you want to pay."


class RecipientLookupsThrottled(WalletError):
    code = "recipient_lookups_throttled"
    status = 429
    title = "Too many look-ups"
    detail = "Too many look-ups of who a phone number or email belongs to. Try again later."
    next_step = "Wait a few minutes, or send to someone you have paid before."
    retryable = True


class RecipientIsSelf(WalletError):
    code = "recipient_is_self"
    title = "Payment to yourself"
    detail = "You cannot send money to yourself."
    next_step = "To move money between your currencies, use Convert."


class RecipientCannotReceive(WalletError):
    code = "recipient_cannot_receive"
    status = 409
    title = "Recipient cannot receive money"
    detail = "This account cannot receive money right now."
    next_step = (
        "Nothing was sent. Ask the person to contact purse support, or pay them another way."
    )


class NoteTooLong(WalletError):
    code = "note_too_long"
    title = "Note too long"
    detail = "A note may have at most {length_max} character."
    detail_plural = "A note may have at most {length_max} characters."
    count_field = "length_max"
    next_step = "Shorten the note."


class FxRateUnavailable(WalletError):
    code = "fx_rate_unavailable"
    status = 409
    title = "Exchange rate unavailable"
    detail = "There is no exchange rate from {from_asset} to {to_asset} right now."
    next_step = "Try again later, or convert through another currency."
    retryable = True


class ConversionSameAsset(WalletError):
    code = "conversion_same_asset"
    title = "Same currency on both sides"
    detail = "Choose two different currencies to convert between."


class ConversionTooSmall(WalletError):
    code = "conversion_too_small"
    title = "Amount too small to convert"
    detail = "This amount is too small to convert; it would give less than the smallest unit."
    next_step = "Convert a larger amount."


class QuoteNotFound(WalletError):
    code = "quote_not_found"
    status = 404
    title = "Quote not found"
    detail = "This quote does not exist."
    next_step = "Ask for a new quote."


class QuoteExpired(WalletError):
    code = "quote_expired"
    status = 409
    title = "Quote expired"
    detail = "This quote has expired; rates change, so it was not used."
    next_step = "Ask for a new quote and confirm it within its time."


class QuoteUsed(WalletError):
    code = "quote_used"
    status = 409
    title = "Quote already used"
    detail = "This quote was already used for a conversion."
    next_step = "Ask for a new quote to convert again."


class MoneyRequestNotFound(WalletError):
    code = "money_request_not_found"
    status = 404
    title = "Request not found"
    detail = "There is no such money request."
    next_step = "Open the request from your list of requests."


class MoneyRequestToSelf(WalletError):
    code = "money_request_to_self"
    title = "Request to yourself"
    detail = "You cannot ask yourself for money."
    next_step = "Enter the phone number, email or handle of the person who owes you."


class MoneyRequestTooLarge(WalletError):
    code = "money_request_too_large"
    title = "Request too large"
    detail = "This is more than they can pay in one transfer: ask for at most {limit}."
    next_step = "Ask for a smaller amount, or for several payments."
    amount_fields = ("limit",)


class MoneyRequestNotOpen(WalletError):
    code = "money_request_not_open"
    status = 409
    title = "Request already answered"
    detail = "This request was already {status}."
    next_step = "Your list of requests shows where each one stands."
    translated_fields = ("status",)


# The statuses a request can be in when it is no longer open, as words of the sentence above.
REQUEST_STATUS_WORDS = (N_("paid"), N_("declined"), N_("cancelled"), N_("expired"))


class MoneyRequestExpired(WalletError):
    code = "money_request_expired"
    status = 409
    title = "Request expired"
    detail = "This request has expired."
    next_step = "Ask the person to send a new request if you still owe them."


class StatementMonthInvalid(WalletError):
    code = "statement_month_invalid"
    title = "Month not valid"
    detail = "Choose a month in the form YYYY-MM that is not in the future."


class StatementNotFound(WalletError):
    code = "statement_not_found"
    status = 404
    title = "Statement not found"
    detail = "There is no such statement."


class StatementNotReady(WalletError):
    code = "statement_not_ready"
    status = 409
    title = "Statement not ready"
    detail = "This statement is still being prepared."
    next_step = "Wait a moment; the page shows its progress."
    retryable = True


class StatementFailed(WalletError):
    code = "statement_failed"
    status = 409
    title = "Statement failed"
    detail = "This statement could not be prepared."
    next_step = "Ask for it again; if it fails again, contact purse support."
    retryable = True


class CursorInvalid(WalletError):
    code = "cursor_invalid"
    title = "Page cursor not valid"
    detail = "This page cursor is not valid."
    next_step = "Start again from the first page."


# Every reason a wallet operation can fail, in the order the catalogue lists them.
CATALOGUE: tuple[type[PurseError], ...] = (
    ledger.InsufficientFunds,
    RecipientNotFound,
    RecipientLookupsThrottled,
    RecipientIsSelf,
    RecipientCannotReceive,
    operations.LimitExceeded,
    money.AmountScaleExceeded,
    money.AmountNotPositive,
    money.AmountInvalid,
    money.AmountOutOfRange,
    money.AssetUnknown,
    operations.AssetNotOffered,
    NoteTooLong,
    ledger.AccountFrozen,
    ledger.AccountClosed,
    funding.FundingSourceNotFound,
    funding.FundingSourceLimitReached,
    funding.CardNumberInvalid,
    funding.CardExpiryInvalid,
    funding.BankAccountInvalid,
    funding.CardExpired,
    funding.BankInsufficientFunds,
    funding.BankDeclined,
    funding.ProviderTimeout,
    funding.ProviderUnavailable,
    FxRateUnavailable,
    ConversionSameAsset,
    ConversionTooSmall,
    QuoteNotFound,
    QuoteExpired,
    QuoteUsed,
    MoneyRequestNotFound,
    MoneyRequestToSelf,
    MoneyRequestTooLarge,
    MoneyRequestNotOpen,
    MoneyRequestExpired,
    operations.IdempotencyKeyMissing,
    ledger.IdempotencyKeyReused,
    ledger.IdempotencyKeyInvalid,
)
