"""From the hold on: capture, void, and the expiry of an authorization.

An authorized payment holds money on its customer's wallet. Exactly one of these ends
the hold, and the payment's row lock (taken first by each) makes sure only one does:

* **capture** takes all of it or part of it (the ledger releases the rest); never more
  than was authorized, and, for a merchant in "no charge without fulfilment" mode, only
  with a fulfilment reference, which the customer then sees on the payment;
* **void** releases it;
* **expiry**: the hold's time ran out. The ledger's own job releases the money; the
  job here marks the payment expired and tells the customer. A capture after the end
  of the window is refused even before either job ran.

The merchant's requests carry an idempotency key: sent again with it, a capture or a
void answers with the payment as it stands (``Idempotent-Replayed``); with another
request under the same key, ``idempotency_key_reused``.

Every step is posted with its actor as the initiator: the merchant's key (or the member
of staff) for capture and void, the system for expiry.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from purse.identity.principal import Principal
from purse.identity.users import person
from purse.ledger import errors as ledger_errors
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.rules import HoldStatus, TransferKind, TransferRequest
from purse.merchants import errors, queries
from purse.merchants.models import MerchantPayment
from purse.merchants.payments import (
    PaymentRecord,
    actor_of,
    in_currency_of,
    payment_record,
    record_event,
    step_on,
    update_payment,
)
from purse.merchants.queries import MerchantRecord
from purse.merchants.rules import (
    FULFILMENT_REFERENCE_LENGTH_MAX,
    PaymentStatus,
    clean_name,
)
from purse.models import utc_now
from purse.money.amounts import format_amount
from purse.operations import rules as operation_rules
from purse.operations.context import Operations
from purse.operations.service import (
    add_event,
    check_key,
    lock_operation,
    notify_operation,
    post_for,
)

_payments = cast(Table, MerchantPayment.__table__)

_ENDED = {
    PaymentStatus.captured.value: errors.PaymentAlreadyCaptured,
    PaymentStatus.voided.value: errors.PaymentVoided,
    PaymentStatus.expired.value: errors.PaymentAuthorizationExpired,
    PaymentStatus.requires_approval.value: errors.PaymentNotAuthorized,
}


def _authorized(payment: PaymentRecord) -> None:
    """Refuse a payment that holds no money any more (or never did)."""
    ended = _ENDED.get(payment.status)
    if ended is not None:
        raise ended()


def capture(
    session: Session,
    *,
    operations: Operations,
    principal: Principal,
    merchant_id: int,
    mode: str,
    reference: str,
    amount: tuple[str, int] | None,
    fulfilment_reference: str | None,
    idempotency_key: str,
    now: datetime,
) -> tuple[PaymentRecord, bool]:
    """Take the held money, all of it or ``amount`` (currency, minor units); returns the
    payment and whether this was a replay."""
    check_key(operations, idempotency_key)
    if fulfilment_reference is not None:
        cleaned = clean_name(fulfilment_reference, length_max=FULFILMENT_REFERENCE_LENGTH_MAX)
        if cleaned.value is None:
            raise errors.MerchantNameInvalid(
                field="fulfilment_reference",
                reason=cleaned.reason,
                length_max=FULFILMENT_REFERENCE_LENGTH_MAX,
            )
        fulfilment_reference = cleaned.value
    asked = operation_rules.fingerprint(
        {
            "capture": reference,
            "amount": amount,
            "fulfilment_reference": fulfilment_reference,
        }
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
        return payment, True
    _authorized(payment)
    taken = in_currency_of(payment, amount, default=payment.amount_minor)
    if taken > payment.amount_minor:
        raise errors.CaptureExceedsAuthorization()
    merchant = queries.merchant(session, merchant_id=merchant_id)
    if merchant.capture_requires_fulfilment and fulfilment_reference is None:
        raise errors.FulfilmentReferenceRequired()
    assert payment.hold_transfer_id is not None
    operation = None
    if payment.operation_id is not None:
        operation = lock_operation(session, payment.operation_id)
    try:
        posted = post_for(
            session,
            operations=operations,
            reference=payment.reference,
            initiator=principal.initiator(settings=operations.settings, now=now),
            step="capture",
            transfers=[
                TransferRequest(
                    kind=TransferKind.post_pending,
                    pending_id=payment.hold_transfer_id,
                    amount_minor=taken,
                    reason_code="merchant_capture",
                    reference=operation.reference if operation is not None else payment.reference,
                )
            ],
            now=now,
        )
    except (ledger_errors.PendingTransferExpired, ledger_errors.PendingTransferAlreadyExpired):
        raise errors.PaymentAuthorizationExpired() from None
    charge = posted.transfers[0]
    payment = update_payment(
        session,
        payment,
        now=now,
        status=PaymentStatus.captured.value,
        captured_minor=taken,
        captured_at=now,
        charge_transfer_id=charge.id,
        fulfilment_reference=fulfilment_reference,
    )
    record_event(
        session,
        payment,
        "captured",
        actor=actor_of(principal),
        now=now,
        assets=operations.assets,
        amount_minor=taken,
        fulfilment_reference=fulfilment_reference,
        transfer_id=charge.id,
        idempotency_key=idempotency_key,
        fingerprint=asked,
    )
    if operation is not None:
        operation.status = "completed"
        operation.completed_at = operation.updated_at = now
        operation.ledger_group_id = posted.transfers[0].group_id
        add_event(session, operation, "posted", now=now)
        notify_operation(
            session,
            operations=operations,
            user_id=operation.user_id,
            template="payment_captured",
            operation=operation,
            now=now,
            amount=_amount(session, operations, payment, taken),
            **_merchant_names(merchant),
        )
    return payment, False


def void(
    session: Session,
    *,
    operations: Operations,
    principal: Principal,
    merchant_id: int,
    mode: str,
    reference: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[PaymentRecord, bool]:
    """Release the held money; returns the payment and whether this was a replay."""
    check_key(operations, idempotency_key)
    asked = operation_rules.fingerprint({"void": reference})
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
        return payment, True
    _authorized(payment)
    assert payment.hold_transfer_id is not None
    try:
        post_for(
            session,
            operations=operations,
            reference=payment.reference,
            initiator=principal.initiator(settings=operations.settings, now=now),
            step="void",
            transfers=[
                TransferRequest(
                    kind=TransferKind.void_pending,
                    pending_id=payment.hold_transfer_id,
                    reason_code="merchant_void",
                    reference=payment.reference,
                )
            ],
            now=now,
        )
    except (ledger_errors.PendingTransferExpired, ledger_errors.PendingTransferAlreadyExpired):
        raise errors.PaymentAuthorizationExpired() from None
    voided = _released(
        session,
        operations=operations,
        payment=payment,
        status=PaymentStatus.voided,
        failure_code=errors.PaymentVoided.code,
        actor=actor_of(principal),
        now=now,
        idempotency_key=idempotency_key,
        fingerprint=asked,
    )
    return voided, False


def expire_authorizations(
    session: Session, *, operations: Operations, now: datetime | None = None, limit: int = 500
) -> int:
    """Mark payments whose hold ran out uncaptured as expired, and release the hold if the
    ledger's job has not yet (a worker job). Returns how many.

    Safe in several processes: on PostgreSQL each run claims its payments with ``SKIP
    LOCKED``, and a capture or void, which lock the payment's row first, waits or is
    skipped.
    """
    now = now or utc_now()
    query = (
        select(_payments)
        .where(
            _payments.c.status == PaymentStatus.authorized.value,
            _payments.c.authorized_until <= now,
        )
        .order_by(_payments.c.authorized_until)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    due = [payment_record(row._mapping, now) for row in session.execute(query)]
    released = 0
    for payment in due:
        assert payment.hold_transfer_id is not None
        if not ledger.expire_hold(session, pending_id=payment.hold_transfer_id, now=now):
            # Released by the ledger's own expiry job already, or (never, while the row
            # lock holds) resolved some other way: only an expired hold makes it expired.
            if ledger_queries.hold_status(session, transfer_id=payment.hold_transfer_id) != (
                HoldStatus.expired
            ):
                continue
        released += 1
        _released(
            session,
            operations=operations,
            payment=payment,
            status=PaymentStatus.expired,
            failure_code=errors.PaymentAuthorizationExpired.code,
            actor=("system", "job:expire_authorizations"),
            now=now,
        )
    return released


def _released(
    session: Session,
    *,
    operations: Operations,
    payment: PaymentRecord,
    status: PaymentStatus,
    failure_code: str,
    actor: tuple[str, str],
    now: datetime,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> PaymentRecord:
    """The hold is gone, nothing was taken: the payment, its timeline, the customer told.
    Returns the payment as it now stands."""
    released = update_payment(session, payment, now=now, status=status.value, released_at=now)
    record_event(
        session,
        released,
        status.value,
        actor=actor,
        now=now,
        assets=operations.assets,
        amount_minor=payment.amount_minor,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    if payment.operation_id is None:
        return released
    operation = lock_operation(session, payment.operation_id)
    operation.status = "failed"
    operation.failure_code = failure_code
    operation.updated_at = now
    add_event(session, operation, status.value, now=now)
    merchant = queries.merchant(session, merchant_id=payment.merchant_id)
    notify_operation(
        session,
        operations=operations,
        user_id=operation.user_id,
        template="payment_released",
        operation=operation,
        now=now,
        **_merchant_names(merchant),
    )
    return released


def _merchant_names(merchant: MerchantRecord) -> dict[str, str]:
    """A merchant's name in both languages: a notice is worded in its reader's."""
    return {"merchant_en": merchant.name_en, "merchant_zh": merchant.name_zh}


def _amount(
    session: Session, operations: Operations, payment: PaymentRecord, amount_minor: int
) -> str:
    """An amount of the payment, worded for its customer."""
    assert payment.customer_user_id is not None
    locale = person(session, payment.customer_user_id).locale
    return format_amount(amount_minor, operations.assets.get(payment.asset), locale)
