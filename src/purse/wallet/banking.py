"""Money to and from banks: top-ups and withdrawals through a funding provider.

A provider call crosses the network, which must never happen inside a DB
transaction. So the operation is written first (with a hold on the wallet for a
withdrawal), the provider is called outside any transaction, and its answer is
recorded in a second transaction. If the process dies in between, the follow-up
job asks again with the same reference, which providers treat as an
idempotency key. Callbacks that arrive twice or late find the operation
already final and change nothing; the ledger keys derived from the reference
make a second posting impossible even then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from purse.errors import PurseError
from purse.funding.errors import ProviderTimeout, ProviderUnavailable
from purse.funding.models import FundingSource
from purse.funding.provider import Answer, AnswerStatus, Event
from purse.funding.service import get_funding_source
from purse.identity.principal import Principal
from purse.identity.users import person
from purse.ledger import errors as ledger_errors
from purse.ledger import service as ledger
from purse.ledger.rules import TransferKind, TransferRequest
from purse.models import utc_now
from purse.operations import rules as operation_rules
from purse.operations.accounts import (
    PROVIDER_CLEARING,
    account_id,
    system_account,
    user_owner,
    wallet_account,
)
from purse.operations.models import Operation
from purse.operations.service import (
    OperationResult,
    add_event,
    check_large_transfer,
    check_limits,
    lock_operation,
    lock_user,
    new_operation,
    notify_operation,
    post,
    replay,
)
from purse.wallet.context import Wallet
from purse.wallet.kinds import TOP_UP, WITHDRAWAL

log = structlog.get_logger(__name__)

FOLLOW_UP_DELAY_SECONDS_MAX = 60 * 60


# Top-up and withdrawal -------------------------------------------------------------------


def start_top_up(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    funding_source_id: int,
    asset: str,
    amount_minor: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Write a pending top-up; :func:`submit_to_provider` then asks the bank to charge it."""
    return _start(
        session,
        wallet=wallet,
        principal=principal,
        kind=TOP_UP.name,
        funding_source_id=funding_source_id,
        asset=asset,
        amount_minor=amount_minor,
        idempotency_key=idempotency_key,
        now=now or utc_now(),
    )


def start_withdrawal(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    funding_source_id: int,
    asset: str,
    amount_minor: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Hold the amount in the wallet; :func:`submit_to_provider` then asks the bank to pay out."""
    return _start(
        session,
        wallet=wallet,
        principal=principal,
        kind=WITHDRAWAL.name,
        funding_source_id=funding_source_id,
        asset=asset,
        amount_minor=amount_minor,
        idempotency_key=idempotency_key,
        now=now or utc_now(),
    )


def _start(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    kind: str,
    funding_source_id: int,
    asset: str,
    amount_minor: int,
    idempotency_key: str,
    now: datetime,
) -> OperationResult:
    user_id = principal.wallet_user_id
    fingerprint = operation_rules.fingerprint(
        {"kind": kind, "source": funding_source_id, "asset": asset, "amount": amount_minor}
    )
    replayed = replay(
        session,
        operations=wallet.operations,
        user_id=user_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    if replayed is not None:
        return OperationResult(replayed, replayed=True)
    offered = wallet.offered(asset)
    source = get_funding_source(session, principal=principal, funding_source_id=funding_source_id)
    owner = user_owner(user_id)
    if kind == TOP_UP.name:
        # Money coming in counts only against the per-transfer limit.
        user = person(session, user_id)
        limits = operation_rules.limits_for(
            wallet.settings.wallet_limits, kyc_level=user.kyc_level, asset=offered
        )
        if limits is not None:
            operation_rules.check_limits(
                limits,
                amount_minor=amount_minor,
                spent_today_minor=0,
                spent_month_minor=0,
                asset=offered,
            )
        held_from = account_id(session, owner=owner, asset=offered.code)
    else:
        check_large_transfer(
            wallet.operations,
            principal=principal,
            asset=offered,
            amount_minor=amount_minor,
            now=now,
        )
        user = lock_user(session, user_id)
        check_limits(
            session,
            operations=wallet.operations,
            user=user,
            asset=offered,
            amount_minor=amount_minor,
            now=now,
        )
        held_from = account_id(session, owner=owner, asset=offered.code, create=False)
        if held_from is None:
            raise ledger_errors.InsufficientFunds()
    operation = new_operation(
        session,
        operations=wallet.operations,
        principal=principal,
        user_id=user_id,
        kind=kind,
        asset=offered.code,
        amount_minor=amount_minor,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        now=now,
        funding_source_id=source.id,
        provider=source.provider,
        provider_stage="created",
        provider_due_at=now + timedelta(seconds=wallet.settings.provider_follow_up_seconds),
    )
    if kind == TOP_UP.name:
        return OperationResult(operation)
    assert held_from is not None
    held = post(
        session,
        operations=wallet.operations,
        operation=operation,
        step="hold",
        transfers=[
            TransferRequest(
                kind=TransferKind.pending,
                debit_account_id=held_from,
                credit_account_id=system_account(
                    session, kind=PROVIDER_CLEARING, asset=offered.code
                ),
                asset=offered.code,
                amount_minor=amount_minor,
                timeout_seconds=wallet.settings.withdrawal_hold_seconds,
                reason_code="withdrawal",
                reference=operation.reference,
            )
        ],
        now=now,
    ).transfers[0]
    operation.hold_transfer_id = held.id
    operation.hold_expires_at = held.expires_at
    add_event(session, operation, "held", now=now)
    return OperationResult(operation)


@dataclass(frozen=True, slots=True)
class ProviderCall:
    operation_id: int
    kind: str
    provider: str
    token: str
    asset: str
    amount_minor: int
    reference: str


def _provider_call(session: Session, *, operation_id: int) -> ProviderCall | None:
    operation = session.get(Operation, operation_id)
    if operation is None or operation.status != "pending" or operation.funding_source_id is None:
        return None
    source = session.get_one(FundingSource, operation.funding_source_id)
    assert operation.provider is not None
    return ProviderCall(
        operation_id=operation.id,
        kind=operation.kind,
        provider=operation.provider,
        token=source.provider_token,
        asset=operation.asset,
        amount_minor=operation.amount_minor,
        reference=operation.reference,
    )


def submit_if_unsent(wallet: Wallet, operation: Operation) -> None:
    """Ask the provider about an operation just written (or replayed) that it has not seen."""
    if operation.status == "pending" and operation.provider_stage == "created":
        submit_to_provider(wallet, operation_id=operation.id)


def submit_to_provider(wallet: Wallet, *, operation_id: int) -> None:
    """Ask the provider to charge or pay out a pending operation, and record its answer.

    Called outside any DB transaction, right after the operation is written and
    again by the follow-up job; the provider treats the reference as an
    idempotency key, so asking twice never moves money twice.
    """
    database = wallet.database
    call = database.run(
        lambda session: _provider_call(session, operation_id=operation_id), write=False
    )
    if call is None:
        return
    provider = wallet.provider(call.provider)
    ask = provider.charge if call.kind == "top_up" else provider.payout
    try:
        answer = ask(
            token=call.token,
            asset=call.asset,
            amount_minor=call.amount_minor,
            reference=call.reference,
        )
    except (ProviderTimeout, ProviderUnavailable) as error:
        code = error.code
        database.run(
            lambda session: record_provider_silence(session, operation_id=operation_id, code=code)
        )
        return
    database.run(
        lambda session: apply_answer(
            session, wallet=wallet, operation_id=operation_id, answer=answer
        )
    )


def record_provider_silence(
    session: Session, *, operation_id: int, code: str, now: datetime | None = None
) -> None:
    """The provider did not answer: the operation stays pending and is asked about later."""
    now = now or utc_now()
    operation = lock_operation(session, operation_id)
    if operation.status != "pending":
        return
    if operation.provider_checked_at is None:
        add_event(session, operation, "provider_silent", now=now, detail=code)
    operation.provider_checked_at = now
    operation.updated_at = now


def apply_answer(
    session: Session,
    *,
    wallet: Wallet,
    operation_id: int,
    answer: Answer,
    now: datetime | None = None,
) -> Operation:
    """Record what the provider said about a pending operation (final answers settle it)."""
    now = now or utc_now()
    operation = lock_operation(session, operation_id)
    if operation.status != "pending":
        return operation  # a callback already settled it
    operation.provider_checked_at = now
    operation.updated_at = now
    if answer.provider_reference:
        operation.provider_reference = answer.provider_reference
    if answer.status is AnswerStatus.accepted and operation.provider_stage == "created":
        operation.provider_stage = "submitted"
        add_event(session, operation, "submitted", now=now)
    elif answer.status is AnswerStatus.succeeded:
        _complete(session, wallet=wallet, operation=operation, now=now)
    elif answer.status is AnswerStatus.declined:
        _fail(
            session,
            wallet=wallet,
            operation=operation,
            code=answer.decline_code or "bank_declined",
            now=now,
        )
    elif answer.status is AnswerStatus.unknown:
        operation.provider_stage = "created"  # the provider never got it: submit again
    return operation


def handle_provider_event(
    session: Session,
    *,
    wallet: Wallet,
    provider_name: str,
    event: Event,
    now: datetime | None = None,
) -> str:
    """A provider's callback: settle the operation it names, once. Returns what happened."""
    now = now or utc_now()
    operation = session.scalars(
        select(Operation)
        .where(Operation.reference == event.reference, Operation.provider == provider_name)
        .with_for_update()
    ).first()
    if operation is None:
        log.warning("funding.event_unknown_reference", provider=provider_name)
        return "unknown"
    if operation.status == "pending":
        apply_answer(
            session,
            wallet=wallet,
            operation_id=operation.id,
            answer=Answer(
                status=event.status,
                provider_reference=event.provider_reference,
                decline_code=event.decline_code,
            ),
            now=now,
        )
        return "applied"
    if (
        operation.status == "failed"
        and operation.failure_code == "provider_timeout"
        and event.status is AnswerStatus.succeeded
    ):
        _late_success(session, wallet=wallet, operation=operation, now=now)
        return "late"
    return "duplicate"


def _complete(session: Session, *, wallet: Wallet, operation: Operation, now: datetime) -> None:
    if operation.kind == "top_up":
        record = post(
            session,
            operations=wallet.operations,
            operation=operation,
            step="settle",
            transfers=[
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=system_account(
                        session, kind=PROVIDER_CLEARING, asset=operation.asset
                    ),
                    credit_account_id=wallet_account(session, operation),
                    asset=operation.asset,
                    amount_minor=operation.amount_minor,
                    reason_code="top_up",
                    reference=operation.reference,
                )
            ],
            now=now,
        ).transfers[0]
        template = "top_up_completed"
    else:
        assert operation.hold_transfer_id is not None
        try:
            record = post(
                session,
                operations=wallet.operations,
                operation=operation,
                step="settle",
                transfers=[
                    TransferRequest(
                        kind=TransferKind.post_pending,
                        pending_id=operation.hold_transfer_id,
                        reason_code="withdrawal",
                        reference=operation.reference,
                    )
                ],
                now=now,
            ).transfers[0]
        except (ledger_errors.PendingTransferExpired, ledger_errors.PendingTransferAlreadyExpired):
            # The bank paid out after the hold ran out. Refusing its callback would leave
            # the money paid by the bank and back in the wallet; instead do what giving
            # up and then hearing of the payout does: release the hold, take the amount.
            ledger.expire_hold(session, pending_id=operation.hold_transfer_id, now=now)
            add_event(session, operation, "expired", now=now)
            operation.status, operation.failure_code = "failed", "provider_timeout"
            operation.provider_stage, operation.updated_at = "answered", now
            _late_success(session, wallet=wallet, operation=operation, now=now)
            return
        template = "withdrawal_completed"
    operation.ledger_group_id = record.group_id
    operation.status = "completed"
    operation.completed_at = now
    operation.provider_stage = "answered"
    add_event(session, operation, "posted", now=now)
    notify_operation(
        session,
        operations=wallet.operations,
        user_id=operation.user_id,
        template=template,
        operation=operation,
        now=now,
    )


def _fail(
    session: Session, *, wallet: Wallet, operation: Operation, code: str, now: datetime
) -> None:
    if operation.kind == "withdrawal" and operation.hold_transfer_id is not None:
        try:
            post(
                session,
                operations=wallet.operations,
                operation=operation,
                step="void",
                transfers=[
                    TransferRequest(
                        kind=TransferKind.void_pending,
                        pending_id=operation.hold_transfer_id,
                        reason_code="withdrawal_failed",
                        reference=operation.reference,
                    )
                ],
                now=now,
            ).transfers[0]
            add_event(session, operation, "voided", now=now)
        except (
            ledger_errors.PendingTransferAlreadyExpired,
            ledger_errors.PendingTransferExpired,
        ):
            add_event(session, operation, "expired", now=now)
    operation.status = "failed"
    operation.failure_code = code
    operation.provider_stage = "answered"
    operation.updated_at = now
    add_event(session, operation, "failed", now=now, detail=code)
    notify_operation(
        session,
        operations=wallet.operations,
        user_id=operation.user_id,
        template=f"{operation.kind}_failed",
        operation=operation,
        now=now,
        reason=code,
    )


def _late_success(session: Session, *, wallet: Wallet, operation: Operation, now: datetime) -> None:
    """The bank went through after purse had given up on it.

    A top-up's money was taken from the card, so it is credited now. A withdrawal
    was paid out after its hold was released, so the amount is taken from the
    wallet if it is there; if not, the operation is flagged for support.
    """
    if operation.kind == "top_up":
        operation.status = "pending"
        operation.failure_code = None
        _complete(session, wallet=wallet, operation=operation, now=now)
        return
    try:
        record = post(
            session,
            operations=wallet.operations,
            operation=operation,
            step="late",
            transfers=[
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=wallet_account(session, operation),
                    credit_account_id=system_account(
                        session, kind=PROVIDER_CLEARING, asset=operation.asset
                    ),
                    asset=operation.asset,
                    amount_minor=operation.amount_minor,
                    reason_code="withdrawal",
                    reference=operation.reference,
                )
            ],
            now=now,
        ).transfers[0]
    except PurseError as error:
        log.error("funding.late_payout_unfunded", reference=operation.reference, code=error.code)
        add_event(session, operation, "needs_review", now=now, detail=error.code)
        return
    operation.ledger_group_id = record.group_id
    operation.status = "completed"
    operation.completed_at = now
    add_event(session, operation, "posted", now=now, detail="late")
    notify_operation(
        session,
        operations=wallet.operations,
        user_id=operation.user_id,
        template="withdrawal_completed",
        operation=operation,
        now=now,
    )


def give_up(
    session: Session, *, wallet: Wallet, operation_id: int, now: datetime | None = None
) -> None:
    """Stop waiting for a provider that never answered: fail the operation, release its hold."""
    now = now or utc_now()
    operation = lock_operation(session, operation_id)
    if operation.status == "pending":
        _fail(session, wallet=wallet, operation=operation, code="provider_timeout", now=now)


def follow_up_provider_operations(
    wallet: Wallet, *, now: datetime | None = None, limit: int = 50
) -> int:
    """A worker job: ask providers about operations they have not answered; returns how many.

    Safe in several workers at once: each step locks the operation and does
    nothing if it is no longer pending, and providers de-duplicate by reference.
    """
    now = now or utc_now()
    rows = wallet.database.run(
        lambda session: session.execute(
            select(
                Operation.id,
                Operation.provider_stage,
                Operation.provider_attempts,
                Operation.hold_expires_at,
                Operation.reference,
                Operation.provider,
            )
            .where(
                Operation.status == "pending",
                Operation.provider_stage.in_(("created", "submitted")),
                Operation.provider_due_at <= now,
            )
            .order_by(Operation.provider_due_at)
            .limit(limit)
        ).all(),
        write=False,
    )
    for row in rows:
        _follow_up(wallet, row, now=now)
    return len(rows)


def follow_up_delay_seconds(attempts: int, *, base_seconds: int) -> int:
    """How long to wait after the ``attempts``-th try: doubling from the base, at most an hour."""
    return int(min(FOLLOW_UP_DELAY_SECONDS_MAX, base_seconds * 2 ** min(attempts, 20)))


def _follow_up(wallet: Wallet, row: Any, *, now: datetime) -> None:
    database = wallet.database
    attempts = row.provider_attempts + 1
    delay = follow_up_delay_seconds(
        attempts, base_seconds=wallet.settings.provider_follow_up_seconds
    )
    database.run(
        partial(
            _count_attempt,
            operation_id=row.id,
            attempts=attempts,
            due_at=now + timedelta(seconds=delay),
        )
    )
    hold_over = row.hold_expires_at is not None and row.hold_expires_at <= now
    if attempts > wallet.settings.provider_attempts_max or hold_over:
        database.run(partial(give_up, wallet=wallet, operation_id=row.id, now=now))
    elif row.provider_stage == "created":
        submit_to_provider(wallet, operation_id=row.id)
    else:
        try:
            answer = wallet.provider(row.provider).status(reference=row.reference)
        except (ProviderTimeout, ProviderUnavailable):
            return
        database.run(
            partial(apply_answer, wallet=wallet, operation_id=row.id, answer=answer, now=now)
        )


def _count_attempt(session: Session, *, operation_id: int, attempts: int, due_at: datetime) -> None:
    operation = lock_operation(session, operation_id)
    operation.provider_attempts = max(operation.provider_attempts, attempts)
    operation.provider_due_at = due_at


def deliver(wallet: Wallet, provider_name: str, event: Event) -> str:
    """Apply a provider's callback in a transaction of its own; returns what it did.

    The assembly hands this to the funding domain as the place providers' outcomes go.
    """
    return wallet.database.run(
        lambda session: handle_provider_event(
            session, wallet=wallet, provider_name=provider_name, event=event
        )
    )
