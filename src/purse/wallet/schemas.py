"""Request and response bodies of the wallet API.

Amounts travel as ``{"value": "12.34", "currency": "CNY"}``: a decimal string at
the asset's scale, never a float. Request bodies refuse unknown fields, so
nobody can slip in a balance, an owner or a status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from purse.errors import PurseError
from purse.money.amounts import to_string
from purse.money.assets import AssetRegistry
from purse.wallet import queries


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmountIn(_Strict):
    value: str = Field(max_length=40, examples=["12.50"], description="A decimal string")
    currency: str = Field(min_length=2, max_length=12, examples=["CNY"])


class Money(BaseModel):
    value: str = Field(examples=["12.50"])
    currency: str = Field(examples=["CNY"])

    @classmethod
    def of(cls, amount_minor: int, code: str, assets: AssetRegistry) -> Money:
        return cls(value=to_string(amount_minor, assets.get(code)), currency=code)


class BalanceRead(BaseModel):
    currency: str
    balance: Money = Field(description="Money in the wallet")
    available: Money = Field(description="What can be spent now: the balance less holds")
    held: Money = Field(description="Reserved for withdrawals the bank has not paid yet")
    incoming: Money = Field(description="Top-ups waiting for the bank")


class PartyRead(BaseModel):
    handle: str
    masked_name: str = Field(examples=["Z*** W***"])


class FundingSourceRead(BaseModel):
    id: int
    kind: Literal["card", "bank_account"]
    brand: str
    last4: str
    expiry_month: int | None = None
    expiry_year: int | None = None


class FailureRead(BaseModel):
    code: str
    message: str
    next_step: str | None
    retryable: bool

    @classmethod
    def of(cls, error: PurseError, locale: str) -> FailureRead:
        return cls(
            code=error.code,
            message=error.message(locale),
            next_step=error.next_step_message(locale) or None,
            retryable=error.retryable,
        )


class TimelineRead(BaseModel):
    event: str = Field(examples=["created", "held", "submitted", "posted", "voided", "failed"])
    detail: str | None
    at: datetime


class InitiatorRead(BaseModel):
    kind: str
    authenticated_by: str
    device: str | None


class OperationRead(BaseModel):
    reference: str = Field(description="Quote it to support", examples=["PW7K3D9QXM2A"])
    kind: Literal["top_up", "withdrawal", "send", "convert"]
    status: Literal["pending", "completed", "failed"]
    direction: Literal["in", "out", "exchange"]
    amount: Money
    fee: Money | None = Field(description="For a conversion, the spread kept, in the target")
    converted: Money | None = Field(description="What a conversion gave")
    rate: str | None
    note: str | None
    counterparty: PartyRead | None
    funding_source: FundingSourceRead | None
    failure: FailureRead | None
    money_request_id: int | None
    created_at: datetime
    completed_at: datetime | None
    hold_expires_at: datetime | None
    initiator: InitiatorRead | None
    timeline: list[TimelineRead]

    @classmethod
    def of(cls, view: queries.OperationView, assets: AssetRegistry, locale: str) -> OperationRead:
        fee_asset = view.to_asset if view.kind == "convert" else view.asset
        failure = view.failure
        return cls(
            reference=view.reference,
            kind=view.kind,
            status=view.status,
            direction=view.direction,
            amount=Money.of(view.amount_minor, view.asset, assets),
            fee=Money.of(view.fee_minor, fee_asset, assets) if fee_asset else None,
            converted=Money.of(view.to_amount_minor, view.to_asset, assets)
            if view.to_asset and view.to_amount_minor is not None
            else None,
            rate=view.rate,
            note=view.note,
            counterparty=PartyRead(
                handle=view.counterparty.handle, masked_name=view.counterparty.masked_name
            )
            if view.counterparty
            else None,
            funding_source=FundingSourceRead.model_validate(
                view.funding_source, from_attributes=True
            )
            if view.funding_source
            else None,
            failure=FailureRead.of(failure, locale) if failure is not None else None,
            money_request_id=view.money_request_id,
            created_at=view.created_at,
            completed_at=view.completed_at,
            hold_expires_at=view.hold_expires_at,
            initiator=InitiatorRead(
                kind=view.initiator_kind,
                authenticated_by=view.authenticated_by or "",
                device=view.device,
            )
            if view.initiator_kind
            else None,
            timeline=[
                TimelineRead(event=entry.event, detail=entry.detail, at=entry.at)
                for entry in view.timeline
            ],
        )


class ActivityRead(BaseModel):
    items: list[OperationRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class RecipientRead(BaseModel):
    handle: str
    masked_name: str = Field(description="Check it is the person you mean before sending")


class TransferCreate(_Strict):
    to: str = Field(max_length=320, description="Phone (E.164), email or handle of the recipient")
    amount: AmountIn
    note: str | None = Field(default=None, max_length=400)


class FundingCreate(_Strict):
    funding_source_id: int = Field(ge=1, le=2**63 - 1)
    amount: AmountIn


class CardCreate(_Strict):
    kind: Literal["card"]
    number: str = Field(max_length=32, description="Never stored: the provider returns a token")
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=0, le=9999)
    holder_name: str = Field(max_length=100)


class BankAccountCreate(_Strict):
    kind: Literal["bank_account"]
    bank_name: str = Field(min_length=1, max_length=100)
    account_number: str = Field(max_length=48, description="Never stored: only the last 4 digits")
    holder_name: str = Field(max_length=100)


FundingSourceCreate = Annotated[CardCreate | BankAccountCreate, Field(discriminator="kind")]


class QuoteCreate(_Strict):
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


class ConversionCreate(_Strict):
    quote_id: str = Field(max_length=64)


class MoneyRequestCreate(_Strict):
    payer: str = Field(max_length=320, description="Phone, email or handle of who should pay")
    amount: AmountIn
    note: str | None = Field(default=None, max_length=400)


class MoneyRequestRead(BaseModel):
    id: int
    direction: Literal["incoming", "outgoing"]
    other: PartyRead
    amount: Money
    note: str | None
    status: Literal["open", "paid", "declined", "cancelled", "expired"]
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
    code: str
    status: int
    message: str
    next_step: str | None
    retryable: bool


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


class StatementCreate(_Strict):
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", examples=["2026-11"])
    format: Literal["csv", "pdf"] = "pdf"


class StatementRead(BaseModel):
    id: int
    month: str
    format: Literal["csv", "pdf"]
    locale: str
    status: Literal["queued", "running", "ready", "failed"]
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


class ProviderEventRead(BaseModel):
    status: Literal["applied", "duplicate", "unknown", "late"]
