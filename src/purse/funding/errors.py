"""What a card processor or bank can answer, as purse errors with a next step.

A decline is final for that payment: nothing moved, and the same card will most
likely be declined again (``retryable`` is False). A timeout or an unavailable
provider is transient.
"""

from __future__ import annotations

from purse.errors import RequestError


class FundingError(RequestError):
    """A funding source or a provider's answer that stops a top-up or withdrawal."""

    status = 422


class CardNumberInvalid(FundingError):
    code = "card_number_invalid"
    title = "Card number not valid"
    detail = "This card number is not valid."
    next_step = "Check the number on the front of your card and type it again."


class CardExpiryInvalid(FundingError):
    code = "card_expiry_invalid"
    title = "Expiry date not valid"
    detail = "The expiry date is not valid."
    next_step = "Type the month and year printed on your card."


class BankAccountInvalid(FundingError):
    code = "bank_account_invalid"
    title = "Bank account number not valid"
    detail = "This bank account number is not valid."
    next_step = "Bank account numbers have 8 to 34 digits; check it on a statement from your bank."


class CardExpired(FundingError):
    code = "card_expired"
    title = "Card expired"
    detail = "The card has expired."
    next_step = "Nothing was taken. Add a card that is still valid, or use another one."


class BankInsufficientFunds(FundingError):
    code = "bank_insufficient_funds"
    title = "Not enough money at the bank"
    detail = "Your bank declined the payment: there is not enough money on the card or account."
    next_step = "Nothing was taken. Use another card or account, or a smaller amount."


class BankDeclined(FundingError):
    code = "bank_declined"
    title = "Declined by the bank"
    detail = "Your bank declined the payment without giving a reason (do not honour)."
    next_step = "Nothing was taken. Call the number on the back of your card, or use another card."


class ProviderTimeout(FundingError):
    code = "provider_timeout"
    status = 504
    title = "Bank timed out"
    detail = "The bank did not answer in time."
    next_step = "Nothing was taken. Try again later, or use another card or account."
    retryable = True


class ProviderUnavailable(FundingError):
    code = "provider_unavailable"
    status = 503
    title = "Bank unavailable"
    detail = "The bank cannot be reached right now."
    next_step = "Nothing was taken. Try again in a few minutes."
    retryable = True


class ProviderEventInvalid(FundingError):
    code = "provider_event_invalid"
    status = 400
    title = "Provider message not verified"
    detail = "The provider's message could not be verified."


# What a provider's decline code means to purse (anything unknown is a plain decline).
DECLINES: dict[str, type[FundingError]] = {
    CardExpired.code: CardExpired,
    BankInsufficientFunds.code: BankInsufficientFunds,
    BankDeclined.code: BankDeclined,
    ProviderTimeout.code: ProviderTimeout,
}


def decline_error(code: str | None) -> FundingError:
    return DECLINES.get(code or "", BankDeclined)()


class FundingSourceNotFound(FundingError):
    code = "funding_source_not_found"
    status = 404
    title = "Card or account not found"
    detail = "This card or bank account is not linked to your wallet."
    next_step = "Choose one of your linked cards or accounts, or link a new one."


class FundingSourceLimitReached(FundingError):
    code = "funding_source_limit_reached"
    status = 409
    title = "Too many cards and accounts"
    detail = "You can link at most {count_max} card or bank account."
    detail_plural = "You can link at most {count_max} cards and bank accounts."
    count_field = "count_max"
    next_step = "Remove one you no longer use first."
