"""Refunds: money a merchant gives back from a captured payment.

A refund is a posted transfer from the merchant's settlement account back to the wallet
the payment came from, a reversal of the capture, so it is back in the customer's
wallet at once. A payment may have several, and never more in all than was captured:
the payment's row lock and its ``refunded_minor`` (bounded by a CHECK) decide, and the
ledger itself bounds the reversals of a transfer by the transfer. The settlement
account never goes below zero, so a refund the merchant's balance cannot pay is refused.

Each refund has a reason and its own reference (``re_...``); the merchant's request
carries an idempotency key, and sent again with it answers with the same refund. A live
refund is a ``refund`` operation in the customer's activity, initiated by the merchant's
key (or member of staff), and the customer is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import RowMapping, Table, select
from sqlalchemy.orm import Session

from purse.identity.principal import Principal
from purse.ledger import errors as ledger_errors
from purse.ledger.rules import TransferRequest
from purse.merchants import errors, queries
from purse.merchants.kinds import REFUND
from purse.merchants.models import MerchantPaymentEvent
from purse.merchants.payments import (
    PaymentRecord,
    actor_of,
    in_currency_of,
    record_event,
    step_on,
    update_payment,
)
from purse.merchants.rules import PaymentStatus, RefundReason, new_refund_reference
from purse.operations import rules as operation_rules
from purse.operations.context import Operations
from purse.operations.service import (
    add_event,
    check_key,
    lock_operation,
    new_operation,
    notify_operation,
    post_for,
)

_events = cast(Table, MerchantPaymentEvent.__table__)


@dataclass(frozen=True, slots=True)
class RefundRecord:
    reference: str
    payment_reference: str
    asset: str
    amount_minor: int
    reason: str
    created_at: datetime


def refund(
    session: Session,
    *,
    operations: Operations,
    principal: Principal,
    merchant_id: int,
    mode: str,
    reference: str,
    amount: tuple[str, int] | None,
    reason: RefundReason,
    idempotency_key: str,
    now: datetime,
) -> tuple[RefundRecord, PaymentRecord, bool]:
    """Give back ``amount`` (currency, minor units; by default all that is left) of a
    captured payment; returns the refund, the payment after it, and whether this was a
    replay."""
    check_key(operations, idempotency_key)
    asked = operation_rules.fingerprint(
        {"refund": reference, "amount": amount, "reason": reason.value}
    )
    payment, earlier = step_on(
        session,
        merchant_id=merchant_id,
        mode=mode,
        reference=reference,
        idempotency_key=idempotency_key,
        fingerprint=asked,
        now=now,
    )
    if earlier is not None:
        return _refund(earlier, payment), payment, True
    if payment.status != PaymentStatus.captured:
        raise errors.PaymentNotCaptured()
    assert payment.charge_transfer_id is not None and payment.customer_user_id is not None
    given = in_currency_of(payment, amount, default=payment.refundable_minor)
    if given <= 0 or given > payment.refundable_minor:
        raise errors.RefundExceedsCaptured()
    refund_reference = new_refund_reference()
    # A live refund is an operation of the customer's; its transfer carries the operation's
    # reference, by which the customer's statement finds it.
    operation_reference = operation_rules.new_reference() if payment.operation_id else None
    try:
        posted = post_for(
            session,
            operations=operations,
            reference=payment.reference,
            initiator=principal.initiator(settings=operations.settings, now=now),
            step=f"refund:{refund_reference}",
            transfers=[
                TransferRequest(
                    reversal_of=payment.charge_transfer_id,
                    amount_minor=given,
                    reason_code="merchant_refund",
                    reference=operation_reference or refund_reference,
                )
            ],
            now=now,
        )
    except ledger_errors.InsufficientFunds:
        raise errors.RefundExceedsBalance() from None
    transfer = posted.transfers[0]
    payment = update_payment(
        session, payment, now=now, refunded_minor=payment.refunded_minor + given
    )
    operation_id = None
    if payment.operation_id is not None:
        operation_id = _tell_customer(
            session,
            operations=operations,
            principal=principal,
            payment=payment,
            refund_reference=refund_reference,
            operation_reference=operation_reference,
            amount_minor=given,
            fingerprint=asked,
            group_id=transfer.group_id,
            now=now,
        )
    record_event(
        session,
        payment,
        "refunded",
        actor=actor_of(principal),
        now=now,
        assets=operations.assets,
        amount_minor=given,
        reference=refund_reference,
        reason=reason.value,
        operation_id=operation_id,
        transfer_id=transfer.id,
        idempotency_key=idempotency_key,
        fingerprint=asked,
    )
    refunded = RefundRecord(
        reference=refund_reference,
        payment_reference=payment.reference,
        asset=payment.asset,
        amount_minor=given,
        reason=reason.value,
        created_at=now,
    )
    return refunded, payment, False


def _tell_customer(
    session: Session,
    *,
    operations: Operations,
    principal: Principal,
    payment: PaymentRecord,
    refund_reference: str,
    operation_reference: str | None,
    amount_minor: int,
    fingerprint: str,
    group_id: int,
    now: datetime,
) -> int:
    """The refund in the customer's activity, on the payment's timeline, and told."""
    assert payment.operation_id is not None and payment.customer_user_id is not None
    paid = lock_operation(session, payment.operation_id)
    add_event(session, paid, "refunded", now=now, detail=refund_reference)
    operation = new_operation(
        session,
        operations=operations,
        principal=principal,
        user_id=payment.customer_user_id,
        kind=REFUND.name,
        asset=payment.asset,
        amount_minor=amount_minor,
        idempotency_key=f"refund:{refund_reference}",
        fingerprint=fingerprint,
        now=now,
        reference=operation_reference,
        events=("posted",),
        note=payment.description,
        status="completed",
        completed_at=now,
        ledger_group_id=group_id,
    )
    merchant = queries.merchant(session, merchant_id=payment.merchant_id)
    notify_operation(
        session,
        operations=operations,
        user_id=payment.customer_user_id,
        template="refund_received",
        operation=operation,
        now=now,
        merchant_en=merchant.name_en,
        merchant_zh=merchant.name_zh,
    )
    return operation.id


def refunds_of(session: Session, *, payment: PaymentRecord) -> list[RefundRecord]:
    """A payment's refunds, oldest first."""
    rows = session.execute(
        select(_events)
        .where(_events.c.payment_id == payment.id, _events.c.event == "refunded")
        .order_by(_events.c.id)
    )
    return [_refund(row._mapping, payment) for row in rows]


def _refund(row: RowMapping, payment: PaymentRecord) -> RefundRecord:
    return RefundRecord(
        reference=row["reference"],
        payment_reference=payment.reference,
        asset=payment.asset,
        amount_minor=row["amount_minor"],
        reason=row["reason"],
        created_at=row["created_at"],
    )
