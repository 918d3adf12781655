"""Bodies every money API shares: amounts, and an operation with its timeline.

Amounts travel as ``{"value": "12.34", "currency": "CNY"}``: a decimal string at
the asset's scale, never a float. Request bodies refuse unknown fields, so
nobody can slip in a balance, an owner or a status.

An operation's ``status`` and ``direction`` are closed sets, named enums in the
OpenAPI document. Its ``kind`` is not: domains register kinds as purse grows
(:mod:`purse.operations.kinds`), and a generated client turns an enum into a
type that refuses values it was not generated with, so every new kind would
break every client already out there. ``kind`` stays a string, and its schema
lists the kinds registered when the document is made, as examples.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from purse.devices import device_display
from purse.errors import PurseError
from purse.funding.schemas import FundingSourceRead
from purse.money.amounts import to_string
from purse.money.assets import AssetRegistry
from purse.operations import kinds
from purse.operations.kinds import Direction
from purse.operations.queries import OperationView


class OperationStatus(StrEnum):
    pending = "pending"
    completed = "completed"
    failed = "failed"


OPERATION_KIND_DESCRIPTION = (
    "What it is: a kind registered by a domain. Open-ended: new kinds come with new "
    "features, so a client must accept any string"
)


def describe_registered_kinds(schema: dict[str, Any]) -> None:
    """Name the kinds registered now in a ``kind`` schema (read when the document is made)."""
    names = [kind.name for kind in kinds.registered()]
    schema["examples"] = names
    schema["description"] = f"{OPERATION_KIND_DESCRIPTION} (now: {', '.join(names)})."


class Strict(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class AmountIn(Strict):
    value: str = Field(max_length=40, examples=["12.50"], description="A decimal string")
    currency: str = Field(min_length=2, max_length=12, examples=["CNY"])


class Money(BaseModel):
    value: str = Field(examples=["12.50"])
    currency: str = Field(examples=["CNY"])

    @classmethod
    def of(cls, amount_minor: int, code: str, assets: AssetRegistry) -> Money:
        return cls(value=to_string(amount_minor, assets.get(code)), currency=code)


class PartyRead(BaseModel):
    handle: str
    masked_name: str = Field(examples=["Z*** W***"])


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
    device: str | None = Field(description="The device in the caller's language")


class MerchantNameRead(BaseModel):
    """A merchant as its customers see it: its name, and the initial shown as its logo."""

    name: str = Field(description="In the caller's language")
    name_en: str
    name_zh: str
    logo_initial: str


class MerchantPaymentRead(BaseModel):
    """The merchant payment behind a payment or a refund: who was paid, for what, and
    what became of the money."""

    merchant: MerchantNameRead
    payment_reference: str
    description: str
    order_reference: str | None = Field(description="The merchant's own order number")
    authorized: Money = Field(description="What the customer approved")
    captured: Money = Field(description="What the merchant took")
    refunded: Money = Field(description="What the merchant gave back")
    held_until: datetime | None = Field(
        description="While the money is only held: when the hold ends, and it comes back"
    )
    fulfilment_reference: str | None = Field(
        description="What the merchant shipped or delivered, as cited when it took the money"
    )

    @classmethod
    def of(
        cls, details: kinds.MerchantPaymentDetails, asset: str, assets: AssetRegistry, locale: str
    ) -> MerchantPaymentRead:
        return cls(
            merchant=MerchantNameRead(
                name=details.merchant_name(locale),
                name_en=details.merchant_name_en,
                name_zh=details.merchant_name_zh,
                logo_initial=details.merchant_initial,
            ),
            payment_reference=details.payment_reference,
            description=details.description,
            order_reference=details.order_reference,
            authorized=Money.of(details.authorized_minor, asset, assets),
            captured=Money.of(details.captured_minor, asset, assets),
            refunded=Money.of(details.refunded_minor, asset, assets),
            held_until=details.held_until,
            fulfilment_reference=details.fulfilment_reference,
        )


class OperationRead(BaseModel):
    reference: str = Field(description="Quote it to support", examples=["PW7K3D9QXM2A"])
    kind: str = Field(
        description=OPERATION_KIND_DESCRIPTION, json_schema_extra=describe_registered_kinds
    )
    status: OperationStatus
    direction: Direction
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
    merchant_payment: MerchantPaymentRead | None = Field(
        description="For a payment to a merchant or a refund from one"
    )

    @classmethod
    def of(cls, view: OperationView, assets: AssetRegistry, locale: str) -> OperationRead:
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
                device=device_display(view.device, locale) if view.device else None,
            )
            if view.initiator_kind
            else None,
            timeline=[
                TimelineRead(event=entry.event, detail=entry.detail, at=entry.at)
                for entry in view.timeline
            ],
            merchant_payment=MerchantPaymentRead.of(
                view.merchant_payment, view.asset, assets, locale
            )
            if view.merchant_payment is not None
            else None,
        )
