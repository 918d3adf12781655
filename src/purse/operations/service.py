"""The writers every money use case shares: the operation record, its timeline, its postings.

Two rules hold for every operation, whichever domain makes it:

* **Idempotency.** Every operation that moves money carries the caller's
  idempotency key. ``(user_id, idempotency_key)`` is unique in ``operations``: a
  retry finds the first operation and gets it back (:func:`replay`); the same key
  with a different request is refused (``idempotency_key_reused``). Two identical
  requests racing on PostgreSQL meet at the unique index: the second waits for
  the first to commit, fails, and the transaction helper runs it again, which
  then replays. Each operation also gives the ledger keys derived from its
  reference (:func:`post`), so no transfer of an operation can be posted twice
  even if a use case were to run twice.
* **Lock order.** The user's row (``FOR NO KEY UPDATE``, for limits), then the
  operation, then domain rows, then the ledger's accounts in id order, then the
  ledger's chain head. Nothing locks in another order, so concurrent operations
  cannot deadlock. An operation that completes at once (a send) is written after
  its postings: its row is new, so nobody waits for it, and its foreign keys take
  ``KEY SHARE`` locks, which only ``FOR UPDATE`` blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached

from purse.db import RetryTransaction
from purse.identity.context import Person, notify_user
from purse.identity.principal import Principal
from purse.identity.users import person
from purse.ledger import errors as ledger_errors
from purse.ledger import service as ledger
from purse.ledger.rules import GroupRequest, Initiator, TransferRequest
from purse.ledger.service import GroupResult
from purse.money.amounts import format_amount
from purse.money.assets import Asset
from purse.operations import kinds, rules, spending
from purse.operations.context import Operations
from purse.operations.models import Operation, OperationEvent
from purse.operations.queries import TimelineEntry, record_event, start_timeline
from purse.prepared import Prepared

# The ledger's idempotency scope of every operation's transfers (keys are
# "<reference>:<step>"). The name predates the operations package; it stays so
# that keys written before and after the move share one scope.
LEDGER_SCOPE = "wallet"

# Built once: a statement made per call costs more than the INSERT itself.
_operations = cast(Table, Operation.__table__)
_INSERT_EVENT = Prepared(insert(cast(Table, OperationEvent.__table__)))
_INSERT_OPERATION = Prepared(insert(_operations).returning(_operations.c.id))
_OPERATION_FIELDS = frozenset(column.key for column in _operations.columns) - {"id"}
_NEW_OPERATION = inspect(Operation).class_manager.new_instance


def operation_as_written(values: dict[str, object], operation_id: int) -> Operation:
    """An Operation built as the ORM builds one from a loaded row: its attributes set in
    one go, without the constructor's per-attribute events (~50 µs an operation).

    The constructor would also configure the mappers on first use; this does it here
    (a flag check once done), or the first send of a fresh process found them unset.
    """
    configure_mappers()
    operation = _NEW_OPERATION()
    operation.__dict__.update(values, id=operation_id)
    return operation


_BY_KEY = Prepared(
    select(_operations.c.id, _operations.c.fingerprint).where(
        _operations.c.user_id == bindparam("user_id"),
        _operations.c.idempotency_key == bindparam("key"),
    )
)


@dataclass(frozen=True, slots=True)
class OperationResult:
    operation: Operation
    replayed: bool = False


def check_key(operations: Operations, idempotency_key: str) -> str:
    """A client's idempotency key, within the length the ledger allows."""
    return rules.check_idempotency_key(
        idempotency_key, length_max=operations.ledger_limits.idempotency_key_length_max
    )


def replay(
    session: Session,
    *,
    operations: Operations,
    user_id: int,
    idempotency_key: str,
    fingerprint: str,
) -> Operation | None:
    """The operation this key already made, or None; another request under it is refused."""
    check_key(operations, idempotency_key)
    # The key and its fingerprint first: most requests are new, and need no more.
    existing = _BY_KEY.first(session, {"user_id": user_id, "key": idempotency_key})
    if existing is None:
        return None
    if existing.fingerprint != fingerprint:
        raise ledger_errors.IdempotencyKeyReused()
    return session.get_one(Operation, existing.id)


def new_operation(
    session: Session,
    *,
    operations: Operations,
    principal: Principal,
    user_id: int,
    kind: str,
    asset: str,
    amount_minor: int,
    idempotency_key: str,
    fingerprint: str,
    now: datetime,
    reference: str | None = None,
    events: Sequence[str] = (),
    final: bool = False,
    **fields: object,
) -> Operation:
    """Write an operation of a registered ``kind``, owned by ``user_id``, started by
    ``principal`` (who, how they authenticated, from which device).

    Its timeline starts with "created", then ``events``. A use case that posts to the
    ledger before it writes the operation (one that completes at once) draws the
    ``reference`` first with :func:`purse.operations.rules.new_reference`.

    The operation is returned in the session, as if loaded, so that a change to it is
    an UPDATE; with ``final`` (a use case that will not change it again, such as a send
    written completed) it is returned as written and kept out of the session: the
    ORM's bookkeeping of one more object, on every later statement of the
    transaction, cost more than its INSERT.
    """
    kinds.get(kind)
    unknown = fields.keys() - _OPERATION_FIELDS
    if unknown:
        raise TypeError(f"operations have no {', '.join(sorted(unknown))}")
    initiator = principal.initiator(settings=operations.settings, now=now)
    values: dict[str, object] = dict.fromkeys(_OPERATION_FIELDS)
    values.update(
        reference=reference or rules.new_reference(),
        kind=kind,
        status="pending",
        user_id=user_id,
        asset=asset,
        amount_minor=amount_minor,
        fee_minor=0,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        initiator_kind=initiator.kind,
        initiator_id=initiator.id,
        authenticated_by=initiator.authenticated_by,
        device=principal.device,
        provider_attempts=0,
        created_at=now,
        updated_at=now,
    )
    values.update(fields)
    try:
        operation_id = _INSERT_OPERATION.scalar(session, values)
    except IntegrityError as error:
        # The same key committed by a concurrent request (or, once in 10^15, a reference
        # collision): run again, and the retry replays or draws a new reference.
        raise RetryTransaction() from error
    operation = operation_as_written(values, operation_id)
    if not final:
        # The row as written, in the session as if loaded: a later change is an UPDATE.
        make_transient_to_detached(operation)
        session.add(operation)
    start_timeline(session, operation_id)
    add_events(session, operation, ("created", *events), now=now)
    if kinds.get(kind).spends:
        # Under the user's row lock, taken for the limit check (see operations.spending).
        spending.count_spending(
            session, user_id=user_id, asset=asset, amount_minor=amount_minor, at=now
        )
    return operation


def add_event(
    session: Session, operation: Operation, event: str, *, now: datetime, detail: str | None = None
) -> None:
    """Append to the operation's timeline (what the user sees under "status")."""
    add_events(session, operation, (event,), now=now, detail=detail)


def add_events(
    session: Session,
    operation: Operation,
    events: Sequence[str],
    *,
    now: datetime,
    detail: str | None = None,
) -> None:
    # A Core INSERT: the timeline is written, never edited, and read back by queries.
    rows = [
        {"operation_id": operation.id, "event": event, "detail": detail, "created_at": now}
        for event in events
    ]
    _INSERT_EVENT.many(session, rows)
    for event in events:
        record_event(session, operation.id, TimelineEntry(event=event, detail=detail, at=now))


def initiator_of(operation: Operation) -> Initiator:
    """The initiator recorded when the operation started: every later posting names it."""
    return Initiator(
        kind=operation.initiator_kind,
        id=operation.initiator_id,
        authenticated_by=operation.authenticated_by,
    )


def post(
    session: Session,
    *,
    operations: Operations,
    operation: Operation,
    step: str,
    transfers: Sequence[TransferRequest],
    now: datetime,
) -> GroupResult:
    """Post ``transfers`` for ``operation`` as one ledger group, once per ``step``."""
    return post_for(
        session,
        operations=operations,
        reference=operation.reference,
        initiator=initiator_of(operation),
        step=step,
        transfers=transfers,
        now=now,
    )


def post_for(
    session: Session,
    *,
    operations: Operations,
    reference: str,
    initiator: Initiator,
    step: str,
    transfers: Sequence[TransferRequest],
    now: datetime,
) -> GroupResult:
    """Post ``transfers`` for the operation ``reference`` as one ledger group, once per ``step``.

    The group's idempotency key is ``<reference>:<step>`` and its initiator the
    operation's, so a step that ran before replays instead of moving money again.
    """
    return ledger.submit_one(
        session,
        group=GroupRequest(
            transfers=tuple(transfers),
            initiator=initiator,
            idempotency_scope=LEDGER_SCOPE,
            idempotency_key=f"{reference}:{step}",
        ),
        now=now,
        limits=operations.ledger_limits,
    )


def lock_user(session: Session, user_id: int) -> Person:
    """Serialise the money-moving operations of one user (for the limit check).

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: an operation's foreign key to its
    counterparty takes a ``KEY SHARE`` lock on that user's row, which ``FOR
    UPDATE`` would block. Two people paying each other at once would then each
    hold their own row and wait for the other's: a deadlock.
    """
    return person(session, user_id, lock=True)


def lock_operation(session: Session, operation_id: int) -> Operation:
    return session.scalars(
        select(Operation).where(Operation.id == operation_id).with_for_update()
    ).one()


def check_limits(
    session: Session,
    *,
    operations: Operations,
    user: Person,
    asset: Asset,
    amount_minor: int,
    now: datetime,
) -> None:
    """Money leaving to others (every kind that ``spends``) within the user's KYC limits.

    Runs after the user's row is locked, so two concurrent operations of one user
    count each other: the second sees the first's amount or waits for it.
    """
    settings = operations.settings
    limits = rules.limits_for(settings.wallet_limits, kyc_level=user.kyc_level, asset=asset)
    if limits is None:
        return
    day_start, month_start = rules.period_starts(now, settings.timezone)
    spent_today, spent_month = spending.spent_since(
        session, user_id=user.id, asset=asset.code, day_start=day_start, month_start=month_start
    )
    rules.check_limits(
        limits,
        amount_minor=amount_minor,
        spent_today_minor=spent_today,
        spent_month_minor=spent_month,
        asset=asset,
    )


def check_large_transfer(
    operations: Operations,
    *,
    principal: Principal,
    asset: Asset,
    amount_minor: int,
    now: datetime,
) -> None:
    """Money leaving a wallet from the large-transfer amount on needs a fresh confirmation.

    ``step_up_required`` (403) when ``large_transfer`` is a step-up action and the
    principal's password was last confirmed longer ago than the step-up window;
    people confirm it and send the same request again (with the same key).
    """
    settings = operations.settings
    threshold = rules.large_transfer_from(settings.step_up_large_transfer, asset)
    if threshold is not None and amount_minor >= threshold:
        principal.require_step_up("large_transfer", settings=settings, now=now)


def notify_operation(
    session: Session,
    *,
    operations: Operations,
    user_id: int,
    template: str,
    operation: Operation,
    now: datetime,
    **data: object,
) -> None:
    """Tell ``user_id`` about ``operation`` on every channel they have, once per template."""
    user = person(session, user_id)
    asset = operations.assets.get(operation.asset)
    notify_user(
        session,
        identity=operations.identity,
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
