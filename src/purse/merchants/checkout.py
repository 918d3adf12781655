"""The customer's side of a payment: seeing it at checkout, and approving it.

Anyone signed in who has a payment's link may see it while it waits for approval (the
reference carries 80 random bits; the checkout page is how a shop asks for money).
Once approved it is its customer's: anyone else gets "not found".

**Approval** moves the money on the ledger in one transaction with the payment's row:

* manual capture places a hold from the customer's wallet to the merchant's settlement
  account, for the authorization window (``PURSE_MERCHANT_AUTHORIZATION_SECONDS``,
  7 days by default); the ledger's own expiry job releases it if nobody captures it;
* automatic capture posts the money at once.

A live payment checks what a send checks first: step-up from the large-transfer amount
on, and the customer's limits under their row lock. It becomes a ``payment`` operation
in the customer's activity, which records the customer's approval (session, factors,
device) as the initiator of the debit.

**Test mode** never touches a live balance: the money moves between the customer's
test wallet (``user_test:<id>``) and the merchant's test settlement account, and each
approval first adds the amount to the test wallet from ``system:test_money``, the
test-mode stand-in for the provider simulator. A test payment makes no operation and
no notice; it is not in the customer's activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from purse.identity.principal import Principal
from purse.ledger import errors as ledger_errors
from purse.ledger.rules import TransferKind, TransferRequest
from purse.merchants import errors, queries
from purse.merchants.kinds import PAYMENT
from purse.merchants.models import MerchantPayment
from purse.merchants.payments import (
    PaymentRecord,
    actor_of,
    locked,
    payment_record,
    record_event,
    update_payment,
)
from purse.merchants.queries import MerchantRecord
from purse.merchants.rules import CaptureMethod, KeyMode, PaymentStatus, settlement_owner
from purse.operations import rules as operation_rules
from purse.operations.accounts import account_id, system_account, user_owner
from purse.operations.context import Operations
from purse.operations.models import Operation
from purse.operations.service import (
    add_events,
    check_key,
    check_large_transfer,
    check_limits,
    lock_user,
    new_operation,
    notify_operation,
    post_for,
    replay,
)

_payments = cast(Table, MerchantPayment.__table__)

# Where test money comes from: a system account that only test wallets are paid from.
TEST_MONEY = "test_money"


def payer_owner(mode: str, user_id: int) -> str:
    """The account map's owner of a customer's wallet in ``mode``: live or test money."""
    return user_owner(user_id) if mode == KeyMode.live else f"user_test:{user_id}"


def settlement_account(session: Session, *, merchant_id: int, mode: str, asset: str) -> int:
    """The merchant's settlement account in ``mode`` and ``asset`` (never below zero)."""
    found = account_id(
        session,
        owner=settlement_owner(merchant_id, mode),
        asset=asset,
        kind="settlement",
        non_negative=True,
    )
    assert found is not None
    return found


@dataclass(frozen=True, slots=True)
class Checkout:
    payment: PaymentRecord
    merchant: MerchantRecord

    @property
    def test_mode(self) -> bool:
        return self.payment.mode == KeyMode.test


def checkout(session: Session, *, reference: str, viewer_id: int | None, now: datetime) -> Checkout:
    """A payment as its (would-be) customer sees it at checkout (``viewer_id`` None: someone
    signed out, who sees it only while it waits for approval)."""
    row = session.execute(select(_payments).where(_payments.c.reference == reference)).first()
    if row is None or row.customer_user_id not in (None, viewer_id):
        raise errors.PaymentNotFound()
    payment = payment_record(row._mapping, now)
    return Checkout(payment, queries.merchant(session, merchant_id=payment.merchant_id))


def exists(session: Session, *, reference: str) -> bool:
    """Whether there is a payment with this reference (whoever's it is)."""
    found = session.execute(
        select(_payments.c.id).where(_payments.c.reference == reference)
    ).first()
    return found is not None


def approve(
    session: Session,
    *,
    operations: Operations,
    principal: Principal,
    reference: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[Checkout, bool]:
    """The signed-in customer approves the payment; returns it and whether this was a replay.

    Approving again, by the same person, answers with the payment as it stands.
    """
    user_id = principal.wallet_user_id
    check_key(operations, idempotency_key)
    asked = operation_rules.fingerprint({"approve": reference})
    found = checkout(session, reference=reference, viewer_id=user_id, now=now)
    payment = found.payment
    if payment.customer_user_id == user_id:
        return found, True
    live = payment.mode == KeyMode.live
    if live:
        # A key the customer used for another request is refused; used for this one, the
        # payment would be theirs already (answered above).
        replay(
            session,
            operations=operations,
            user_id=user_id,
            idempotency_key=idempotency_key,
            fingerprint=asked,
        )
    if payment.status != PaymentStatus.requires_approval:
        raise errors.PaymentNotApprovable()
    if found.merchant.status != "active":
        raise errors.PaymentNotApprovable()
    asset = operations.assets.get(payment.asset)
    if live:
        check_large_transfer(
            operations,
            principal=principal,
            asset=asset,
            amount_minor=payment.amount_minor,
            now=now,
        )
        user = lock_user(session, user_id)
        check_limits(
            session,
            operations=operations,
            user=user,
            asset=asset,
            amount_minor=payment.amount_minor,
            now=now,
        )
    # The payment's row, locked: of two people approving at once, the second waits, then
    # finds it approved (and is told "not found", as it is no longer theirs to see).
    row = session.execute(
        locked(session, select(_payments).where(_payments.c.id == payment.id))
    ).one()
    payment = payment_record(row._mapping, now)
    if payment.customer_user_id not in (None, user_id):
        raise errors.PaymentNotFound()
    if payment.status != PaymentStatus.requires_approval:
        raise errors.PaymentNotApprovable()
    automatic = payment.capture_method == CaptureMethod.automatic
    operation = None
    if live:
        operation = new_operation(
            session,
            operations=operations,
            principal=principal,
            user_id=user_id,
            kind=PAYMENT.name,
            asset=payment.asset,
            amount_minor=payment.amount_minor,
            idempotency_key=idempotency_key,
            fingerprint=asked,
            now=now,
            note=payment.description,
        )
    transfers = _approval_transfers(
        session,
        operations=operations,
        payment=payment,
        user_id=user_id,
        automatic=automatic,
        # The customer's statement finds the operation by the transfer's reference.
        reference=operation.reference if operation is not None else payment.reference,
    )
    posted = post_for(
        session,
        operations=operations,
        reference=payment.reference,
        initiator=principal.initiator(settings=operations.settings, now=now),
        step="approve",
        transfers=transfers,
        now=now,
    )
    taken = posted.transfers[-1]
    values: dict[str, object] = {
        "customer_user_id": user_id,
        "operation_id": operation.id if operation is not None else None,
        "authorized_at": now,
    }
    if automatic:
        values.update(
            status=PaymentStatus.captured.value,
            charge_transfer_id=taken.id,
            captured_minor=payment.amount_minor,
            captured_at=now,
        )
    else:
        values.update(
            status=PaymentStatus.authorized.value,
            hold_transfer_id=taken.id,
            authorized_until=taken.expires_at,
        )
    approved = update_payment(session, payment, now=now, **values)
    actor = actor_of(principal)
    record_event(
        session,
        approved,
        "authorized",
        actor=actor,
        now=now,
        assets=operations.assets,
        amount_minor=payment.amount_minor,
    )
    if automatic:
        record_event(
            session,
            approved,
            "captured",
            actor=actor,
            now=now,
            assets=operations.assets,
            amount_minor=payment.amount_minor,
            transfer_id=taken.id,
        )
    if operation is not None:
        _record_approval(
            session,
            operations=operations,
            operation=operation,
            merchant=found.merchant,
            automatic=automatic,
            group_id=posted.transfers[0].group_id,
            hold_id=taken.id,
            hold_expires_at=taken.expires_at,
            now=now,
        )
    return Checkout(approved, found.merchant), False


def _approval_transfers(
    session: Session,
    *,
    operations: Operations,
    payment: PaymentRecord,
    user_id: int,
    automatic: bool,
    reference: str,
) -> list[TransferRequest]:
    """The hold (or, for automatic capture, the payment), after test money in test mode."""
    live = payment.mode == KeyMode.live
    payer = account_id(
        session,
        owner=payer_owner(payment.mode, user_id),
        asset=payment.asset,
        create=not live,
        kind=None if live else "test_wallet",
        non_negative=True,
    )
    if payer is None:
        raise ledger_errors.InsufficientFunds()
    settlement = settlement_account(
        session, merchant_id=payment.merchant_id, mode=payment.mode, asset=payment.asset
    )
    transfers = []
    if not live:
        transfers.append(
            TransferRequest(
                debit_account_id=system_account(session, kind=TEST_MONEY, asset=payment.asset),
                credit_account_id=payer,
                asset=payment.asset,
                amount_minor=payment.amount_minor,
                reason_code="test_money",
                reference=payment.reference,
            )
        )
    transfers.append(
        TransferRequest(
            kind=TransferKind.posted if automatic else TransferKind.pending,
            debit_account_id=payer,
            credit_account_id=settlement,
            asset=payment.asset,
            amount_minor=payment.amount_minor,
            timeout_seconds=None
            if automatic
            else operations.settings.merchant_authorization_seconds,
            reason_code="merchant_payment",
            reference=reference,
        )
    )
    return transfers


def _record_approval(
    session: Session,
    *,
    operations: Operations,
    operation: Operation,
    merchant: MerchantRecord,
    automatic: bool,
    group_id: int,
    hold_id: int,
    hold_expires_at: datetime | None,
    now: datetime,
) -> None:
    """The customer's operation after approval: held, or (automatic capture) completed."""
    operation.ledger_group_id = group_id
    operation.updated_at = now
    if automatic:
        operation.status = "completed"
        operation.completed_at = now
        add_events(session, operation, ("posted",), now=now)
        notify_operation(
            session,
            operations=operations,
            user_id=operation.user_id,
            template="payment_captured",
            operation=operation,
            now=now,
            merchant_en=merchant.name_en,
            merchant_zh=merchant.name_zh,
        )
    else:
        operation.hold_transfer_id = hold_id
        operation.hold_expires_at = hold_expires_at
        add_events(session, operation, ("held",), now=now)
