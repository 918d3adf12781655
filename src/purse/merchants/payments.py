"""Merchant payments: what a merchant's server asks a customer to pay.

A payment is made by the merchant's server with one of its keys, in that key's mode: a
test key's payments are test payments, and a test key never sees a live one (nor a live
key a test one). Every request that makes one carries an idempotency key, scoped to the
merchant and mode: the same key with the same request answers with the first payment,
with another request it is refused (``idempotency_key_reused``). Two requests racing
with one key both end with the first's payment: the loser's insert fails on the unique
index and its transaction runs again, and then replays.

This is where a payment starts (``requires_approval``); the customer's approval
(:mod:`purse.merchants.checkout`), capture, void and expiry
(:mod:`purse.merchants.capture`) and refunds (:mod:`purse.merchants.refunds`) build on
it, with the helpers below: the payment's row lock, its timeline, and its accounts.

**Lock order.** A use case on a payment locks the payment's row before anything of
its customer's operation, then the ledger's accounts. Approval locks the customer's
row before the payment's (the limits check, see :mod:`purse.operations.service`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import RowMapping, Select, Table, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from purse.db import RetryTransaction
from purse.identity.principal import Principal
from purse.ledger import errors as ledger_errors
from purse.merchants import errors, webhooks
from purse.merchants.models import MerchantPayment, MerchantPaymentEvent
from purse.merchants.rules import (
    DESCRIPTION_LENGTH_MAX,
    ORDER_REFERENCE_LENGTH_MAX,
    CaptureMethod,
    PaymentStatus,
    clean_name,
    metadata_problem,
    new_payment_reference,
    shown_status,
)
from purse.models import utc_now
from purse.money.amounts import to_string
from purse.money.assets import AssetRegistry
from purse.operations.rules import fingerprint

_payments = cast(Table, MerchantPayment.__table__)
_events = cast(Table, MerchantPaymentEvent.__table__)


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    id: int
    reference: str
    merchant_id: int
    mode: str
    asset: str
    amount_minor: int
    description: str
    order_reference: str | None
    metadata: dict[str, str]
    capture_method: str
    status: str
    approve_by: datetime
    created_by_key_id: int
    created_at: datetime
    customer_user_id: int | None
    operation_id: int | None
    authorized_at: datetime | None
    authorized_until: datetime | None
    hold_transfer_id: int | None
    charge_transfer_id: int | None
    captured_minor: int
    captured_at: datetime | None
    fulfilment_reference: str | None
    refunded_minor: int
    released_at: datetime | None

    @property
    def refundable_minor(self) -> int:
        return self.captured_minor - self.refunded_minor


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What the merchant's server asked for, already parsed (the amount in minor units)."""

    asset: str
    amount_minor: int
    description: str
    order_reference: str | None
    metadata: dict[str, str]
    capture_method: CaptureMethod
    approve_within_seconds: int


def create_payment(
    session: Session,
    *,
    merchant_id: int,
    mode: str,
    key_id: int,
    idempotency_key: str,
    request: PaymentRequest,
    now: datetime | None = None,
) -> tuple[PaymentRecord, bool]:
    """Make a payment waiting for its customer; returns it and whether it was a replay."""
    assert session.in_transaction()
    now = now or utc_now()
    description = clean_name(request.description, length_max=DESCRIPTION_LENGTH_MAX)
    if description.value is None:
        raise errors.MerchantNameInvalid(
            field="description", reason=description.reason, length_max=DESCRIPTION_LENGTH_MAX
        )
    order_reference = None
    if request.order_reference is not None:
        cleaned = clean_name(request.order_reference, length_max=ORDER_REFERENCE_LENGTH_MAX)
        if cleaned.value is None:
            raise errors.MerchantNameInvalid(
                field="order_reference",
                reason=cleaned.reason,
                length_max=ORDER_REFERENCE_LENGTH_MAX,
            )
        order_reference = cleaned.value
    problem = metadata_problem(request.metadata)
    if problem is not None:
        raise errors.PaymentMetadataInvalid(reason=problem)
    asked = fingerprint(
        {
            "asset": request.asset,
            "amount_minor": request.amount_minor,
            "description": description.value,
            "order_reference": order_reference,
            "metadata": request.metadata,
            "capture_method": request.capture_method.value,
            "approve_within_seconds": request.approve_within_seconds,
        }
    )
    existing = session.execute(
        select(_payments).where(
            _payments.c.merchant_id == merchant_id,
            _payments.c.mode == mode,
            _payments.c.idempotency_key == idempotency_key,
        )
    ).first()
    if existing is not None:
        if existing.fingerprint != asked:
            raise ledger_errors.IdempotencyKeyReused()
        return payment_record(existing._mapping, now), True
    try:
        payment_id = session.execute(
            insert(_payments)
            .values(
                reference=new_payment_reference(),
                merchant_id=merchant_id,
                mode=mode,
                asset=request.asset,
                amount_minor=request.amount_minor,
                description=description.value,
                order_reference=order_reference,
                metadata_json=json.dumps(request.metadata, sort_keys=True),
                capture_method=request.capture_method.value,
                status=PaymentStatus.requires_approval.value,
                approve_by=now + timedelta(seconds=request.approve_within_seconds),
                created_by_key_id=key_id,
                idempotency_key=idempotency_key,
                fingerprint=asked,
                created_at=now,
            )
            .returning(_payments.c.id)
        ).scalar_one()
    except IntegrityError as error:
        # A concurrent request committed this key first: run again, and replay it.
        raise RetryTransaction() from error
    row = session.execute(select(_payments).where(_payments.c.id == payment_id)).one()
    payment = payment_record(row._mapping, now)
    record_event(
        session,
        payment,
        "created",
        actor=("api_key", str(key_id)),
        now=now,
        amount_minor=payment.amount_minor,
    )
    return payment, False


@dataclass(frozen=True, slots=True)
class PaymentPage:
    items: list[PaymentRecord]
    next_cursor: str | None


def payments_for_key(
    session: Session,
    *,
    merchant_id: int,
    mode: str,
    status: PaymentStatus | None = None,
    order_reference: str | None = None,
    reference: str | None = None,
    cursor: int | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> PaymentPage:
    """The merchant's payments in one mode, newest first, a page at a time.

    ``status`` is the status as shown (a payment past its approval window is expired,
    written so or not); ``cursor`` is the last id of the page before. Given both
    ``order_reference`` and ``reference`` (a search box), either may match.
    """
    now = now or utc_now()
    conditions = [_payments.c.merchant_id == merchant_id, _payments.c.mode == mode]
    if status == PaymentStatus.expired:
        conditions.append(
            or_(
                _payments.c.status == PaymentStatus.expired.value,
                and_(
                    _payments.c.status == PaymentStatus.requires_approval.value,
                    _payments.c.approve_by <= now,
                ),
                and_(
                    _payments.c.status == PaymentStatus.authorized.value,
                    _payments.c.authorized_until <= now,
                ),
            )
        )
    elif status == PaymentStatus.requires_approval:
        conditions += [_payments.c.status == status.value, _payments.c.approve_by > now]
    elif status == PaymentStatus.authorized:
        conditions += [_payments.c.status == status.value, _payments.c.authorized_until > now]
    elif status is not None:
        conditions.append(_payments.c.status == status.value)
    if order_reference is not None and reference is not None:
        conditions.append(
            or_(_payments.c.order_reference == order_reference, _payments.c.reference == reference)
        )
    elif order_reference is not None:
        conditions.append(_payments.c.order_reference == order_reference)
    elif reference is not None:
        conditions.append(_payments.c.reference == reference)
    if cursor is not None:
        conditions.append(_payments.c.id < cursor)
    rows = session.execute(
        select(_payments).where(*conditions).order_by(_payments.c.id.desc()).limit(limit + 1)
    ).all()
    items = [payment_record(row._mapping, now) for row in rows[:limit]]
    more = len(rows) > limit
    return PaymentPage(items=items, next_cursor=str(rows[limit - 1].id) if more else None)


def expire_unapproved(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Mark payments whose approval window ended unapproved as expired (a worker job).

    Safe in several processes: on PostgreSQL each run claims its rows with ``SKIP
    LOCKED``; an approval, which locks the payment's row and checks its window, and
    this job cannot both win.
    """
    assert session.in_transaction()
    now = now or utc_now()
    query = (
        select(_payments.c.id)
        .where(
            _payments.c.status == PaymentStatus.requires_approval.value,
            _payments.c.approve_by <= now,
        )
        .order_by(_payments.c.approve_by)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    due = list(session.execute(query).scalars())
    if due:
        session.execute(
            update(_payments)
            .where(_payments.c.id.in_(due))
            .values(status=PaymentStatus.expired.value)
        )
    return len(due)


def payment_of_merchant(session: Session, *, merchant_id: int, reference: str) -> PaymentRecord:
    """One of the merchant's payments, in either mode (its staff's dashboard)."""
    row = session.execute(
        select(_payments).where(
            _payments.c.reference == reference, _payments.c.merchant_id == merchant_id
        )
    ).first()
    if row is None:
        raise errors.PaymentNotFound()
    return payment_record(row._mapping, utc_now())


def payment_for_key(
    session: Session, *, merchant_id: int, mode: str, reference: str
) -> PaymentRecord:
    """One of the merchant's payments in the key's mode; any other is "not found"."""
    row = session.execute(
        select(_payments).where(
            _payments.c.reference == reference,
            _payments.c.merchant_id == merchant_id,
            _payments.c.mode == mode,
        )
    ).first()
    if row is None:
        raise errors.PaymentNotFound()
    return payment_record(row._mapping, utc_now())


def payment_record(row: RowMapping, now: datetime) -> PaymentRecord:
    """A payment as read from its row, with its status as of ``now``."""
    return PaymentRecord(
        id=row["id"],
        reference=row["reference"],
        merchant_id=row["merchant_id"],
        mode=row["mode"],
        asset=row["asset"],
        amount_minor=row["amount_minor"],
        description=row["description"],
        order_reference=row["order_reference"],
        metadata=json.loads(row["metadata_json"]),
        capture_method=row["capture_method"],
        status=shown_status(
            row["status"],
            approve_by=row["approve_by"],
            authorized_until=row["authorized_until"],
            now=now,
        ),
        approve_by=row["approve_by"],
        created_by_key_id=row["created_by_key_id"],
        created_at=row["created_at"],
        customer_user_id=row["customer_user_id"],
        operation_id=row["operation_id"],
        authorized_at=row["authorized_at"],
        authorized_until=row["authorized_until"],
        hold_transfer_id=row["hold_transfer_id"],
        charge_transfer_id=row["charge_transfer_id"],
        captured_minor=row["captured_minor"],
        captured_at=row["captured_at"],
        fulfilment_reference=row["fulfilment_reference"],
        refunded_minor=row["refunded_minor"],
        released_at=row["released_at"],
    )


# What every step of a payment shares ---------------------------------------------------


def locked(session: Session, query: Select[Any]) -> Select[Any]:
    """``query`` locking the rows it reads (SQLite's one writer needs no row locks)."""
    if session.get_bind().dialect.name == "sqlite":
        return query
    return query.with_for_update()


def lock_payment(
    session: Session, *, merchant_id: int, mode: str, reference: str, now: datetime
) -> PaymentRecord:
    """One of the merchant's payments in ``mode``, its row locked; any other is "not found"."""
    row = session.execute(
        locked(
            session,
            select(_payments).where(
                _payments.c.reference == reference,
                _payments.c.merchant_id == merchant_id,
                _payments.c.mode == mode,
            ),
        )
    ).first()
    if row is None:
        raise errors.PaymentNotFound()
    return payment_record(row._mapping, now)


def update_payment(
    session: Session, payment: PaymentRecord, *, now: datetime, **values: object
) -> PaymentRecord:
    """Change the payment's row; returns the payment as now written (read back by RETURNING)."""
    row = session.execute(
        update(_payments)
        .where(_payments.c.id == payment.id)
        .values(**values)
        .returning(*_payments.c)
    ).one()
    return payment_record(row._mapping, now)


def in_currency_of(payment: PaymentRecord, amount: tuple[str, int] | None, *, default: int) -> int:
    """An amount a merchant named for a step of ``payment``: in its currency, or refused."""
    if amount is None:
        return default
    asset, amount_minor = amount
    if asset != payment.asset:
        raise errors.PaymentCurrencyMismatch(currency=payment.asset)
    return amount_minor


def actor_of(principal: Principal) -> tuple[str, str]:
    """Who did a step, for the payment's timeline: a key, a person, or purse itself."""
    if principal.key_id is not None:
        return "api_key", str(principal.key_id)
    if principal.user_id is not None:
        return "user", str(principal.user_id)
    return "system", principal.id


# The webhook event each step of a payment makes (its creation makes none).
WEBHOOK_EVENTS = {
    "authorized": "payment.authorized",
    "captured": "payment.captured",
    "voided": "payment.voided",
    "expired": "payment.expired",
    "refunded": "payment.refunded",
}


def record_event(
    session: Session,
    payment: PaymentRecord,
    event: str,
    *,
    actor: tuple[str, str],
    now: datetime,
    assets: AssetRegistry | None = None,
    **fields: Any,
) -> None:
    """Add a step to the payment's timeline (``fields``: the event's other columns), and
    tell the merchant's webhook endpoints, in the same transaction. ``payment`` is the
    payment as the step left it (what :func:`update_payment` returned): the event
    carries it."""
    session.execute(
        insert(_events).values(
            payment_id=payment.id,
            merchant_id=payment.merchant_id,
            mode=payment.mode,
            event=event,
            actor_kind=actor[0],
            actor_id=actor[1],
            created_at=now,
            **fields,
        )
    )
    event_type = WEBHOOK_EVENTS.get(event)
    if event_type is None:
        return
    assert assets is not None, "a step the merchant hears about needs the asset registry"
    data = payment_data(payment, assets)
    if event == "refunded":
        asset = assets.get(payment.asset)
        data["refund"] = {
            "reference": fields["reference"],
            "amount": {"value": to_string(fields["amount_minor"], asset), "currency": asset.code},
            "reason": fields["reason"],
        }
    webhooks.emit(
        session,
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        event_type=event_type,
        payment_id=payment.id,
        data=data,
        now=now,
    )


def payment_data(payment: PaymentRecord, assets: AssetRegistry) -> dict[str, Any]:
    """A payment as a webhook's ``data`` carries it: the fields the API answers with."""
    asset = assets.get(payment.asset)

    def money(amount_minor: int) -> dict[str, str]:
        return {"value": to_string(amount_minor, asset), "currency": asset.code}

    def when(instant: datetime | None) -> str | None:
        return instant.isoformat() if instant is not None else None

    return {
        "object": "payment",
        "reference": payment.reference,
        "mode": payment.mode,
        "status": payment.status,
        "amount": money(payment.amount_minor),
        "description": payment.description,
        "order_reference": payment.order_reference,
        "metadata": payment.metadata,
        "capture_method": payment.capture_method,
        "authorized_at": when(payment.authorized_at),
        "authorized_until": when(payment.authorized_until),
        "captured": money(payment.captured_minor),
        "captured_at": when(payment.captured_at),
        "fulfilment_reference": payment.fulfilment_reference,
        "refunded": money(payment.refunded_minor),
        "released_at": when(payment.released_at),
        "created_at": when(payment.created_at),
    }


def event_for_key(
    session: Session, *, merchant_id: int, mode: str, idempotency_key: str, fingerprint: str
) -> RowMapping | None:
    """The step a merchant's request with this key made already, or None.

    The same key with another request is refused (``idempotency_key_reused``), whatever
    the request was: one key, one request, as for every money request in purse.
    """
    row = session.execute(
        select(_events).where(
            _events.c.merchant_id == merchant_id,
            _events.c.mode == mode,
            _events.c.idempotency_key == idempotency_key,
        )
    ).first()
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise ledger_errors.IdempotencyKeyReused()
    return row._mapping


def step_on(
    session: Session,
    *,
    merchant_id: int,
    mode: str,
    reference: str,
    idempotency_key: str,
    fingerprint: str,
    now: datetime,
) -> tuple[PaymentRecord, RowMapping | None]:
    """The payment a merchant's request acts on, and the step this key made already if it is
    a retry (then the payment as it stands); for a new request, the payment's row locked."""
    earlier = event_for_key(
        session,
        merchant_id=merchant_id,
        mode=mode,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    if earlier is not None:
        return payment_by_id(session, earlier["payment_id"], now), earlier
    locked_payment = lock_payment(
        session, merchant_id=merchant_id, mode=mode, reference=reference, now=now
    )
    return locked_payment, None


def payment_by_id(session: Session, payment_id: int, now: datetime) -> PaymentRecord:
    return payment_record(
        session.execute(select(_payments).where(_payments.c.id == payment_id)).one()._mapping, now
    )


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    event: str
    amount_minor: int | None
    reference: str | None
    reason: str | None
    fulfilment_reference: str | None
    actor_kind: str
    actor_id: str
    created_at: datetime


def timeline(session: Session, payment_id: int) -> list[PaymentEvent]:
    """The payment's steps, oldest first."""
    rows = session.execute(
        select(_events).where(_events.c.payment_id == payment_id).order_by(_events.c.id)
    )
    return [
        PaymentEvent(
            event=row.event,
            amount_minor=row.amount_minor,
            reference=row.reference,
            reason=row.reason,
            fulfilment_reference=row.fulfilment_reference,
            actor_kind=row.actor_kind,
            actor_id=row.actor_id,
            created_at=row.created_at,
        )
        for row in rows
    ]
