"""What every wallet use case shares: accounts per owner and asset, and the operation record.

Two rules hold for every wallet use case:

* **Idempotency.** Every operation that moves money carries the caller's
  idempotency key. ``(user_id, idempotency_key)`` is unique in
  ``wallet_operations``: a retry finds the first operation and gets it back
  (:func:`replay`); the same key with a different request is refused
  (``idempotency_key_reused``). Two identical requests racing on PostgreSQL meet
  at the unique index: the second waits for the first to commit, fails, and the
  transaction helper runs it again, which then replays. Each operation also
  gives the ledger keys derived from its reference, so no transfer of an
  operation can be posted twice even if wallet code were to run twice.
* **Lock order.** The user's row (``FOR NO KEY UPDATE``, for limits), then the
  operation, then wallet rows, then the ledger's accounts in id order, then the
  ledger's chain head. Nothing in the wallet locks in another order, so
  concurrent operations cannot deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from purse.db import RetryTransaction
from purse.identity.context import notify_user
from purse.identity.models import Session as SignInSession
from purse.identity.models import User
from purse.ledger import errors as ledger_errors
from purse.ledger import service as ledger
from purse.ledger.rules import Initiator
from purse.money.amounts import format_amount
from purse.money.assets import Asset
from purse.wallet import rules
from purse.wallet.errors import (
    NoteTooLong,
)
from purse.wallet.models import (
    Operation,
    OperationEvent,
    WalletAccount,
)

if TYPE_CHECKING:
    from purse.wallet.context import Caller, Wallet


LEDGER_SCOPE = "wallet"
OUTGOING_KINDS = ("send", "withdrawal")

# System accounts the wallet posts against, one per asset. They may go below zero.
PROVIDER_CLEARING = "provider_clearing"  # money on its way to or from banks
FX_POSITION = "fx_position"  # the currency purse bought and sold in conversions
FX_REVENUE = "fx_revenue"  # the spread purse earned on conversions


@dataclass(frozen=True, slots=True)
class OperationResult:
    operation: Operation
    replayed: bool = False


# Accounts --------------------------------------------------------------------------------


def user_owner(user_id: int) -> str:
    return f"user:{user_id}"


def account_id(session: Session, *, owner: str, asset: str, create: bool = True) -> int | None:
    """The ledger account of ``owner`` in ``asset``, opened on first use when ``create``."""
    found = session.scalar(
        select(WalletAccount.account_id).where(
            WalletAccount.owner == owner, WalletAccount.asset == asset
        )
    )
    if found is not None or not create:
        return found
    is_user = owner.startswith("user:")
    opened = ledger.open_account(
        session,
        asset=asset,
        owner_kind="user" if is_user else "system",
        owner_id=owner.partition(":")[2],
        kind="wallet" if is_user else owner.partition(":")[2],
        debits_must_not_exceed_credits=is_user,
    )
    session.add(WalletAccount(owner=owner, asset=asset, account_id=opened.id))
    try:
        session.flush()
    except IntegrityError as error:
        raise RetryTransaction() from error  # opened concurrently: the next attempt finds it
    return opened.id


def system_account(session: Session, *, kind: str, asset: str) -> int:
    found = account_id(session, owner=f"system:{kind}", asset=asset)
    assert found is not None
    return found


# Operations ------------------------------------------------------------------------------


def replay(
    session: Session, *, caller: Caller, idempotency_key: str, fingerprint: str
) -> Operation | None:
    """The operation this key already made, or None; another request under it is refused."""
    rules.check_idempotency_key(idempotency_key)
    existing = session.scalars(
        select(Operation).where(
            Operation.user_id == caller.user_id, Operation.idempotency_key == idempotency_key
        )
    ).first()
    if existing is not None and existing.fingerprint != fingerprint:
        raise ledger_errors.IdempotencyKeyReused()
    return existing


def device_of(session: Session, caller: Caller) -> str | None:
    if caller.session_id is None:
        return None
    signed_in = session.get(SignInSession, caller.session_id)
    return signed_in.device if signed_in is not None else None


def new_operation(
    session: Session,
    *,
    caller: Caller,
    kind: str,
    asset: str,
    amount_minor: int,
    idempotency_key: str,
    fingerprint: str,
    now: datetime,
    **fields: object,
) -> Operation:
    initiator = caller.initiator()
    operation = Operation(
        reference=rules.new_reference(),
        kind=kind,
        status="pending",
        user_id=caller.user_id,
        asset=asset,
        amount_minor=amount_minor,
        fee_minor=0,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        initiator_kind=initiator.kind,
        initiator_id=initiator.id,
        authenticated_by=initiator.authenticated_by,
        device=device_of(session, caller),
        provider_attempts=0,
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(operation)
    try:
        session.flush()
    except IntegrityError as error:
        # The same key committed by a concurrent request (or, once in 10^15, a reference
        # collision): run again, and the retry replays or draws a new reference.
        raise RetryTransaction() from error
    add_event(session, operation, "created", now=now)
    return operation


def add_event(
    session: Session, operation: Operation, event: str, *, now: datetime, detail: str | None = None
) -> None:
    session.add(
        OperationEvent(operation_id=operation.id, event=event, detail=detail, created_at=now)
    )


def initiator_of(operation: Operation) -> Initiator:
    return Initiator(
        kind=operation.initiator_kind,
        id=operation.initiator_id,
        authenticated_by=operation.authenticated_by,
    )


def lock_user(session: Session, user_id: int) -> User:
    """Serialise the money-moving operations of one user (for the limit check).

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: an operation's foreign key to its
    counterparty takes a ``KEY SHARE`` lock on that user's row, which ``FOR
    UPDATE`` would block. Two people paying each other at once would then each
    hold their own row and wait for the other's: a deadlock.
    """
    query = select(User).where(User.id == user_id).with_for_update(key_share=True)
    return session.scalars(query).one()


def clean_note(wallet: Wallet, note: str | None) -> str | None:
    if note is None:
        return None
    cleaned = " ".join(note.split())
    if len(cleaned) > wallet.settings.note_length_max:
        raise NoteTooLong(length_max=wallet.settings.note_length_max)
    return cleaned or None


def check_limits(
    session: Session, *, wallet: Wallet, user: User, asset: Asset, amount_minor: int, now: datetime
) -> None:
    """Money leaving to others (sends and withdrawals) within the user's KYC limits.

    Runs after the user's row is locked, so two concurrent operations of one user
    count each other: the second sees the first's amount or waits for it.
    """
    limits = rules.limits_for(wallet.settings.wallet_limits, kyc_level=user.kyc_level, asset=asset)
    if limits is None:
        return
    day_start, month_start = rules.period_starts(now, wallet.settings.timezone)
    spent_today, spent_month = session.execute(
        select(
            func.coalesce(
                func.sum(
                    case((Operation.created_at >= day_start, Operation.amount_minor), else_=0)
                ),
                0,
            ),
            func.coalesce(func.sum(Operation.amount_minor), 0),
        ).where(
            Operation.user_id == user.id,
            Operation.asset == asset.code,
            Operation.kind.in_(OUTGOING_KINDS),
            Operation.status != "failed",
            Operation.created_at >= month_start,
        )
    ).one()
    rules.check_limits(
        limits,
        amount_minor=amount_minor,
        spent_today_minor=int(spent_today),
        spent_month_minor=int(spent_month),
        asset=asset,
        locale=user.locale,
    )


def notify_operation(
    session: Session,
    *,
    wallet: Wallet,
    user_id: int,
    template: str,
    operation: Operation,
    now: datetime,
    **data: object,
) -> None:
    user = session.get_one(User, user_id)
    asset = wallet.assets.get(operation.asset)
    notify_user(
        session,
        identity=wallet.identity,
        user=user,
        template=template,
        data={
            "reference": operation.reference,
            "amount": format_amount(operation.amount_minor, asset, user.locale),
            **data,
        },
        now=now,
        event_key=f"{operation.reference}:{template}",
    )


def lock_operation(session: Session, operation_id: int) -> Operation:
    return session.scalars(
        select(Operation).where(Operation.id == operation_id).with_for_update()
    ).one()


def user_account(session: Session, operation: Operation) -> int:
    found = account_id(session, owner=user_owner(operation.user_id), asset=operation.asset)
    assert found is not None
    return found
