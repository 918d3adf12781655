"""The interface every funding provider implements (banks, card processors, the simulator).

purse never keeps a full card or account number: it hands the details to the
provider once, gets back an opaque token, the brand and the last four digits,
and from then on names the instrument by its token.

Money moves in two steps the provider controls. ``charge`` (top-up) and
``payout`` (withdrawal) answer at once with *accepted* (the outcome comes later,
as an event), *declined*, or raise :class:`ProviderTimeout` when the answer was
lost: the payment may or may not exist. Every call carries purse's own
reference, and providers treat it as an idempotency key, so asking again after a
timeout never pays twice. ``status`` asks what became of a reference; events
arrive through ``parse_event`` (an HTTP callback) and may come late, twice, or
not at all, which is why purse also polls ``status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class AnswerStatus(StrEnum):
    accepted = "accepted"  # the provider has it; the outcome comes later
    succeeded = "succeeded"
    declined = "declined"
    unknown = "unknown"  # the provider has no payment with this reference


@dataclass(frozen=True, slots=True)
class CardDetails:
    number: str
    expiry_month: int
    expiry_year: int
    holder_name: str

    def __repr__(self) -> str:  # never print a card number, even in a traceback
        return f"CardDetails(number='****{self.number[-4:]}', holder_name=...)"


@dataclass(frozen=True, slots=True)
class BankAccountDetails:
    bank_name: str
    account_number: str
    holder_name: str

    def __repr__(self) -> str:
        return f"BankAccountDetails(bank_name={self.bank_name!r}, account_number='****')"


@dataclass(frozen=True, slots=True)
class Instrument:
    """What purse keeps of a card or account: a token, and what a person recognises it by."""

    token: str
    brand: str
    last4: str
    expiry_month: int | None = None
    expiry_year: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    status: AnswerStatus
    provider_reference: str | None = None
    decline_code: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A provider's report of an outcome, delivered by callback."""

    event_id: str
    reference: str
    provider_reference: str
    status: AnswerStatus  # succeeded or declined
    decline_code: str | None = None


class FundingProvider(Protocol):
    name: str

    def tokenize_card(self, card: CardDetails) -> Instrument: ...

    def tokenize_bank_account(self, account: BankAccountDetails) -> Instrument: ...

    def charge(self, *, token: str, asset: str, amount_minor: int, reference: str) -> Answer: ...

    def payout(self, *, token: str, asset: str, amount_minor: int, reference: str) -> Answer: ...

    def status(self, *, reference: str) -> Answer: ...

    def parse_event(self, *, headers: Mapping[str, str], body: bytes) -> Event: ...
