"""Request and response bodies of the wallet API.

Amounts and operations are described in :mod:`purse.operations.schemas`. Closed
sets of values are ``StrEnum`` classes: the OpenAPI document names each once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from purse.operations.schemas import AmountIn, Money, OperationRead, PartyRead, Strict


class MoneyRequestDirection(StrEnum):
    """`incoming`: someone asked the user for money; `outgoing`: the user asked someone."""

    incoming = "incoming"
    outgoing = "outgoing"


class MoneyRequestStatus(StrEnum):
    open = "open"
    paid = "paid"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"


class StatementFormat(StrEnum):
    csv = "csv"
    pdf = "pdf"


class StatementStatus(StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"
    failed = "failed"


class BalanceRead(BaseModel):
    currency: str
    balance: Money = Field(description="Money in the wallet")
    available: Money = Field(description="What can be spent now: the balance less holds")
    held: Money = Field(description="Reserved for withdrawals the bank has not paid yet")
    incoming: Money = Field(description="Top-ups waiting for the bank")


class ActivityRead(BaseModel):
    items: list[OperationRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class RecipientRead(BaseModel):
    handle: str
    masked_name: str = Field(description="Check it is the person you mean before sending")


class TransferCreate(Strict):
    to: str = Field(max_length=320, description="Phone (E.164), email or handle of the recipient")
    amount: AmountIn
    note: str | None = Field(default=None, max_length=400)


class FundingCreate(Strict):
    funding_source_id: int = Field(ge=1, le=2**63 - 1)
    amount: AmountIn


class QuoteCreate(Strict):
    from_currency: str = Field(min_length=2, max_length=12, examples=["CNY"])
    to_currency: str = Field(min_length=2, max_length=12, examples=["USD"])
    amount: AmountIn = Field(description="How much of `from_currency` to convert")


class QuoteRead(BaseModel):
    id: str
    sell: Money
    buy: Money
    rate: str = Field(description="Units of `buy` per unit of `sell`, spread included")
    mid_rate: str
    spread: Money = Field(description="What purse keeps, in the `buy` currency")
    expires_at: datetime


class ConversionCreate(Strict):
    quote_id: str = Field(max_length=64)


class MoneyRequestCreate(Strict):
    payer: str = Field(max_length=320, description="Phone, email or handle of who should pay")
    amount: AmountIn
    note: str | None = Field(default=None, max_length=400)


class MoneyRequestRead(BaseModel):
    id: int
    direction: MoneyRequestDirection
    other: PartyRead
    amount: Money
    note: str | None
    status: MoneyRequestStatus
    expires_at: datetime
    created_at: datetime
    operation_reference: str | None


class ReceiveRead(BaseModel):
    handle: str
    link: str = Field(description="Opens the send page with this wallet as the recipient")
    qr_svg: str = Field(description="Path of the QR code of the link, as SVG")


class FxRateRead(BaseModel):
    base: str
    quote: str
    rate: str
    updated_at: datetime


class FailureReasonRead(BaseModel):
    """One reason an operation can fail, as a client prepares for it before it happens.

    A problem answer says the same in full, with the data filled in; here there is no
    data, so ``message`` and ``next_step`` name the problem's fields where the data goes.
    """

    code: str
    status: int
    title: str = Field(description="The problem's fixed title, the same in every answer")
    message: str = Field(
        description="The detail, each data field shown by its name: "
        "'This would go over your ‹period› limit of ‹limit›; ‹remaining› is left.'"
    )
    next_step: str | None
    retryable: bool
    fields: list[str] = Field(
        description="The problem's data fields that fill the detail; an amount comes as "
        '{"value", "currency"} with <field>_display beside it'
    )


class SpendingMonthRead(BaseModel):
    month: str = Field(examples=["2026-11"])
    spent: Money


class SpendingPartyRead(BaseModel):
    counterparty: PartyRead
    spent: Money


class SpendingRead(BaseModel):
    currency: str
    months: list[SpendingMonthRead]
    counterparties: list[SpendingPartyRead]


class StatementCreate(Strict):
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", examples=["2026-11"])
    format: StatementFormat = StatementFormat.pdf


class StatementRead(BaseModel):
    id: int
    month: str
    format: StatementFormat
    locale: str
    status: StatementStatus
    lines_done: int
    lines_total: int
    created_at: datetime
    finished_at: datetime | None
    file: str | None = Field(description="Where to download it once ready")


class WalletBalanceRead(BaseModel):
    handle: str
    balance: Money
    available: Money


class AllBalancesRead(BaseModel):
    currency: str
    wallets_total: int = Field(description="How many user wallets hold this currency")
    total: Money = Field(description="The sum of all of them, read at one moment")
    wallets: list[WalletBalanceRead]
