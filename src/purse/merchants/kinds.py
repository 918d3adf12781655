"""The kinds of operation merchant payments make in their customers' activity.

A live payment is one ``payment`` operation of its customer, from approval on: pending
while the money is only held, completed when the merchant takes it, failed (with the
reason) when the hold is voided or runs out. Each refund is a ``refund`` operation,
money coming back. Both show the merchant, the order and what became of the money
(:func:`details`). Test payments move test money only and make no operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import RowMapping, Table, select
from sqlalchemy.orm import Session

from purse.i18n import N_
from purse.merchants.models import Merchant, MerchantPayment, MerchantPaymentEvent
from purse.merchants.rules import PaymentStatus
from purse.operations.kinds import (
    Direction,
    MerchantPaymentDetails,
    OperationKind,
    Party,
    register,
)

_payments = cast(Table, MerchantPayment.__table__)
_merchants = cast(Table, Merchant.__table__)
_events = cast(Table, MerchantPaymentEvent.__table__)

_COLUMNS = (
    _merchants.c.name_en,
    _merchants.c.name_zh,
    _merchants.c.logo_initial,
    _payments.c.reference,
    _payments.c.description,
    _payments.c.order_reference,
    _payments.c.amount_minor,
    _payments.c.captured_minor,
    _payments.c.refunded_minor,
    _payments.c.status,
    _payments.c.authorized_until,
    _payments.c.fulfilment_reference,
)


def _details(row: RowMapping) -> MerchantPaymentDetails:
    held = row["status"] == PaymentStatus.authorized.value
    return MerchantPaymentDetails(
        merchant_name_en=row["name_en"],
        merchant_name_zh=row["name_zh"],
        merchant_initial=row["logo_initial"],
        payment_reference=row["reference"],
        description=row["description"],
        order_reference=row["order_reference"],
        authorized_minor=row["amount_minor"],
        captured_minor=row["captured_minor"],
        refunded_minor=row["refunded_minor"],
        held_until=row["authorized_until"] if held else None,
        fulfilment_reference=row["fulfilment_reference"],
    )


def payment_details(
    session: Session, operation_ids: Sequence[int]
) -> dict[int, MerchantPaymentDetails]:
    """The payments behind ``payment`` operations, by operation id."""
    rows = session.execute(
        select(_payments.c.operation_id, *_COLUMNS)
        .join(_merchants, _merchants.c.id == _payments.c.merchant_id)
        .where(_payments.c.operation_id.in_(operation_ids))
    )
    return {row.operation_id: _details(row._mapping) for row in rows}


def refund_details(
    session: Session, operation_ids: Sequence[int]
) -> dict[int, MerchantPaymentDetails]:
    """The payments that ``refund`` operations give money back from, by operation id."""
    rows = session.execute(
        select(_events.c.operation_id, *_COLUMNS)
        .join(_payments, _payments.c.id == _events.c.payment_id)
        .join(_merchants, _merchants.c.id == _payments.c.merchant_id)
        .where(_events.c.operation_id.in_(operation_ids))
    )
    return {row.operation_id: _details(row._mapping) for row in rows}


PAYMENT = register(
    OperationKind(
        name="payment",
        label=N_("Payment"),
        owner_direction=Direction.outgoing,
        spends=True,
        told_on_completion=((Party.owner, "payment_captured"),),
        details=payment_details,
    )
)
REFUND = register(
    OperationKind(
        name="refund",
        label=N_("Refund"),
        owner_direction=Direction.incoming,
        told_on_completion=((Party.owner, "refund_received"),),
        details=refund_details,
    )
)
