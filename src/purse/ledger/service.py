"""The ledger's writers: the only code in purse that changes a balance.

The write path is built so that many transfers can share one commit (TigerBeetle
style): :func:`submit` takes a batch of groups, checks and reports each group on
its own, and writes every accepted transfer with a handful of statements.
Single-transfer helpers are thin wrappers over it.

One batch, in one DB transaction:

1. Look up the batch's idempotency keys. A key seen before with the same request
   fingerprint replays the first result; with another fingerprint it is refused.
2. Lock what the batch touches, always in the same order so concurrent batches
   cannot deadlock: holds by id, then accounts by id (``FOR UPDATE`` on
   PostgreSQL; on SQLite the write lock was taken at ``BEGIN IMMEDIATE``).
3. Apply each group in memory against the locked rows (``rules.BatchState``):
   all of a group or none of it.
4. Read the chain head last: it says which months are closed (``checkpoint_at``,
   see :mod:`purse.ledger.checkpoints`), and a batch dated at or before it is
   refused. On SQLite the batch then hands out transfer ids in order from the
   head and seals each transfer into the hash chain as it writes it; on
   PostgreSQL ids come from a sequence, in the same statement, and the sealer
   chains the transfers once they have committed (:mod:`purse.ledger.sealer`).
5. Write transfers, holds, balances and keys.

The chain head is read under a key-share lock on PostgreSQL: the month job's
lock waits for it, so a batch either committed before its month closed (and is
summed) or sees it closed (and is refused), but payments never wait for each
other on it. Each connection remembers the last ``checkpoint_at`` it read, so a
batch dated into a month known to be closed is refused before it locks anything;
one that learns it only from the chain head (the month job closed the month
since) raises, and its transaction rolls back.

Concurrent batches that raced on an idempotency key fail on its unique index and
are run again by the caller's transaction helper (``RetryTransaction``), which
then replays the winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from purse.db import RetryTransaction
from purse.errors import RequestError
from purse.ledger import errors
from purse.ledger.models import Account, Hold, IdempotencyKey, Transfer
from purse.ledger.queries import AccountRecord, TransferRecord, load_groups
from purse.ledger.rules import (
    DEFAULT_LIMITS,
    AccountState,
    AccountStatus,
    BatchState,
    GroupRequest,
    HoldState,
    HoldStatus,
    Initiator,
    LedgerLimits,
    OriginalTransfer,
    TransferKind,
    TransferRequest,
    check_group_shape,
    hash_fields,
    transfer_hash,
)
from purse.ledger.sealer import UPDATE_HEAD, take_places
from purse.models import utc_now
from purse.prepared import Prepared, run_driver_sql

SYSTEM_EXPIRY = Initiator(kind="system", id="hold_expiry", authenticated_by="system")

_accounts = cast(Table, Account.__table__)
_transfers = cast(Table, Transfer.__table__)
_holds = cast(Table, Hold.__table__)
_keys = cast(Table, IdempotencyKey.__table__)

# The hot path's statements, built once: each call then skips construction,
# coercion and most of the cache-key work (about 100 us a statement).
_SELECT_KEYS = Prepared(
    select(_keys.c.scope, _keys.c.key, _keys.c.fingerprint, _keys.c.group_id).where(
        _keys.c.scope == bindparam("scope"), _keys.c.key.in_(bindparam("keys", expanding=True))
    )
)
_SELECT_ACCOUNTS = (
    select(
        _accounts.c.id,
        _accounts.c.asset,
        _accounts.c.status,
        _accounts.c.debits_must_not_exceed_credits,
        _accounts.c.debits_pending,
        _accounts.c.debits_posted,
        _accounts.c.credits_pending,
        _accounts.c.credits_posted,
    )
    .where(_accounts.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_accounts.c.id)
)
# SQLite has no row locks; its writers are serialised by BEGIN IMMEDIATE.
_SELECT_ACCOUNTS_FOR = {
    "sqlite": Prepared(_SELECT_ACCOUNTS),
    "postgresql": Prepared(_SELECT_ACCOUNTS.with_for_update()),
}
# Where each connection keeps the newest closed month start it has read (its ``info``
# lasts as long as the pooled connection, and belongs to one database).
_CLOSED_AT = "purse_ledger_checkpoint_at"
_UPDATE_BALANCES = Prepared(
    update(_accounts)
    .where(_accounts.c.id == bindparam("b_id"))
    .values(
        debits_pending=bindparam("b_dpe"),
        debits_posted=bindparam("b_dpo"),
        credits_pending=bindparam("b_cpe"),
        credits_posted=bindparam("b_cpo"),
    )
)
_UPDATE_HOLDS = (
    update(_holds)
    .where(_holds.c.transfer_id == bindparam("b_id"))
    .where(_holds.c.status == HoldStatus.pending.value)
    .values(status=bindparam("b_status"), resolved_by_id=bindparam("b_by"))
)
_INSERT_HOLDS = insert(_holds)


@dataclass(frozen=True, slots=True)
class GroupResult:
    """The outcome of one group: its transfers, or the first error (nothing written)."""

    transfers: tuple[TransferRecord, ...] = ()
    error: RequestError | None = None
    failed_index: int | None = None
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> GroupResult:
        if self.error is not None:
            raise self.error
        return self


def _require_transaction(session: Session) -> Connection:
    assert session.in_transaction(), "ledger writers run inside the caller's DB transaction"
    return session.connection()


def _is_sqlite(connection: Connection) -> bool:
    return connection.dialect.name == "sqlite"


def _for_update(statement: Any, connection: Connection) -> Any:
    # SQLite has no row locks; its writers are serialised by BEGIN IMMEDIATE.
    return statement if connection.dialect.name == "sqlite" else statement.with_for_update()


def open_account(
    session: Session,
    *,
    asset: str,
    owner_kind: str,
    owner_id: str | None,
    kind: str,
    debits_must_not_exceed_credits: bool,
    now: datetime | None = None,
) -> AccountRecord:
    """Open an account in ``asset``; wallets set ``debits_must_not_exceed_credits``."""
    connection = _require_transaction(session)
    if not (asset and len(asset) <= 12 and asset.isascii() and asset.isalnum()):
        raise errors.TransferFieldsInvalid(field="asset", reason="1 to 12 letters or digits")
    row: dict[str, Any] = {
        "asset": asset.upper(),
        "owner_kind": owner_kind,
        "owner_id": owner_id,
        "kind": kind,
        "debits_must_not_exceed_credits": debits_must_not_exceed_credits,
        "status": AccountStatus.active.value,
        "debits_pending": 0,
        "debits_posted": 0,
        "credits_pending": 0,
        "credits_posted": 0,
        "created_at": now or utc_now(),
    }
    account_id = connection.execute(
        insert(_accounts).values(row).returning(_accounts.c.id)
    ).scalar_one()
    return AccountRecord(id=account_id, **row)


def set_account_status(
    session: Session, *, account_id: int, status: AccountStatus
) -> AccountRecord:
    """Freeze, unfreeze or close an account. Closing needs a zero balance and no open hold."""
    connection = _require_transaction(session)
    row = connection.execute(
        _for_update(select(_accounts).where(_accounts.c.id == account_id), connection)
    ).first()
    if row is None:
        raise errors.AccountNotFound()
    account = AccountRecord(**row._asdict())
    if account.status == AccountStatus.closed and status != AccountStatus.closed:
        raise errors.AccountStatusInvalid(current=account.status, requested=str(status))
    if status == AccountStatus.closed and (
        account.balance_minor != 0 or account.debits_pending or account.credits_pending
    ):
        raise errors.AccountNotEmpty()
    connection.execute(
        update(_accounts).where(_accounts.c.id == account_id).values(status=str(status))
    )
    return AccountRecord(**{**row._asdict(), "status": str(status)})


def submit(
    session: Session,
    *,
    groups: Sequence[GroupRequest],
    now: datetime | None = None,
    limits: LedgerLimits = DEFAULT_LIMITS,
) -> list[GroupResult]:
    """Apply a batch of groups in the caller's transaction; one result per group, in order."""
    connection = _require_transaction(session)
    if len(groups) > limits.batch_size_max:
        raise ValueError(f"a batch holds at most {limits.batch_size_max} groups")
    now = _utc(now or utc_now())
    results: list[GroupResult | None] = [None] * len(groups)

    fingerprints: dict[int, str] = {}
    for index, group in enumerate(groups):
        shape_error = check_group_shape(
            group,
            group_size_max=limits.group_size_max,
            key_length_max=limits.idempotency_key_length_max,
        )
        if shape_error is not None:
            results[index] = GroupResult(error=shape_error)
        elif group.idempotency_key is not None:
            fingerprints[index] = group.fingerprint()

    closed_at: datetime | None = connection.info.get(_CLOSED_AT)
    stored_keys = _load_keys(connection, [groups[i] for i in fingerprints])
    replay_group_ids: dict[int, int] = {}
    to_apply: list[int] = []
    for index, group in enumerate(groups):
        if results[index] is not None:
            continue
        if index in fingerprints:
            stored = stored_keys.get((group.idempotency_scope or "", group.idempotency_key or ""))
            if stored is not None:
                if stored[0] != fingerprints[index]:
                    results[index] = GroupResult(error=errors.IdempotencyKeyReused())
                else:
                    replay_group_ids[index] = stored[1]
                continue
        if closed_at is not None and now <= closed_at:
            results[index] = GroupResult(error=_closed_error(closed_at))
            continue
        to_apply.append(index)

    state = _lock_batch_state(connection, [groups[i] for i in to_apply], now=now, limits=limits)
    applied: list[tuple[int, list[Any]]] = []
    batch_keys: dict[tuple[str, str], int] = {}  # key -> index of the group that used it
    for index in to_apply:
        group = groups[index]
        key = (group.idempotency_scope or "", group.idempotency_key or "")
        if index in fingerprints and key in batch_keys:
            first = batch_keys[key]
            if fingerprints[first] != fingerprints[index]:
                results[index] = GroupResult(error=errors.IdempotencyKeyReused())
            else:
                replay_group_ids[index] = -1 - first  # resolved once the first is written
            continue
        outcome = state.apply_group(group.transfers)
        if outcome.error is not None:
            if len(group.transfers) > 1:
                outcome.error.data["transfer_index"] = outcome.failed_index
            results[index] = GroupResult(error=outcome.error, failed_index=outcome.failed_index)
            continue
        applied.append((index, outcome.planned))
        if index in fingerprints:
            batch_keys[key] = index

    written = _write(connection, groups, applied, fingerprints, state, now) if applied else {}
    for index, records in written.items():
        results[index] = GroupResult(transfers=records)
    if replay_group_ids:
        stored_group_ids = [g for g in replay_group_ids.values() if g >= 0]
        replayed = load_groups(connection, stored_group_ids)
        for index, group_id in replay_group_ids.items():
            records = written[-1 - group_id] if group_id < 0 else replayed[group_id]
            results[index] = GroupResult(transfers=records, replayed=True)
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def _utc(now: datetime) -> datetime:
    # The hash covers the time as written, and it is read back in UTC: an instant given
    # in another zone would hash differently from what verify reads.
    if now.tzinfo is None:
        raise ValueError("the ledger takes timezone-aware times")
    return now.astimezone(UTC)


def _closed_error(closed_at: datetime) -> errors.TransferDatedInClosedMonth:
    return errors.TransferDatedInClosedMonth(closed_at=closed_at.astimezone(UTC).isoformat())


def _load_keys(
    connection: Connection, groups: Sequence[GroupRequest]
) -> dict[tuple[str, str], tuple[str, int]]:
    by_scope: dict[str, set[str]] = {}
    for group in groups:
        by_scope.setdefault(group.idempotency_scope or "", set()).add(group.idempotency_key or "")
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for scope, keys in sorted(by_scope.items()):
        rows = _SELECT_KEYS.all(connection, {"scope": scope, "keys": sorted(keys)})
        found.update({(row.scope, row.key): (row.fingerprint, row.group_id) for row in rows})
    return found


def _lock_batch_state(
    connection: Connection, groups: Sequence[GroupRequest], *, now: datetime, limits: LedgerLimits
) -> BatchState:
    requests = [request for group in groups for request in group.transfers]
    pending_ids = sorted({r.pending_id for r in requests if r.pending_id is not None})
    reversal_ids = sorted({r.reversal_of for r in requests if r.reversal_of is not None})
    account_ids: set[int] = set()
    for r in requests:
        account_ids.update(i for i in (r.debit_account_id, r.credit_account_id) if i is not None)

    originals: dict[int, OriginalTransfer] = {}
    if reversal_ids:
        rows = connection.execute(
            select(
                _transfers.c.id,
                _transfers.c.kind,
                _transfers.c.debit_account_id,
                _transfers.c.credit_account_id,
                _transfers.c.asset,
                _transfers.c.amount_minor,
            ).where(_transfers.c.id.in_(reversal_ids))
        )
        for row in rows:
            originals[row.id] = OriginalTransfer(**row._asdict())
            account_ids.update((row.debit_account_id, row.credit_account_id))

    holds: dict[int, HoldState] = {}
    if pending_ids:
        rows = connection.execute(
            _for_update(
                select(
                    _holds.c.transfer_id,
                    _holds.c.debit_account_id,
                    _holds.c.credit_account_id,
                    _holds.c.asset,
                    _holds.c.amount_minor,
                    _holds.c.expires_at,
                    _holds.c.status,
                )
                .where(_holds.c.transfer_id.in_(pending_ids))
                .order_by(_holds.c.transfer_id),
                connection,
            )
        )
        for row in rows:
            holds[row.transfer_id] = HoldState(**row._asdict())
            account_ids.update((row.debit_account_id, row.credit_account_id))

    accounts: dict[int, AccountState] = {}
    if account_ids:
        query = _SELECT_ACCOUNTS_FOR[connection.dialect.name]
        for account in query.all(connection, {"ids": sorted(account_ids)}):
            accounts[account.id] = AccountState(
                id=account.id,
                asset=account.asset,
                status=account.status,
                debits_must_not_exceed_credits=account.debits_must_not_exceed_credits,
                debits_pending=account.debits_pending,
                debits_posted=account.debits_posted,
                credits_pending=account.credits_pending,
                credits_posted=account.credits_posted,
            )

    # Read after the account locks: a concurrent reversal of the same original holds
    # the same accounts, so this sum includes every reversal committed before ours.
    reversed_minor: dict[int, int] = {}
    if originals:
        rows = connection.execute(
            select(_transfers.c.reversal_of, func.sum(_transfers.c.amount_minor))
            .where(_transfers.c.reversal_of.in_(sorted(originals)))
            .group_by(_transfers.c.reversal_of)
        )
        reversed_minor = {row[0]: int(row[1]) for row in rows}

    return BatchState(
        accounts=accounts,
        holds=holds,
        originals=originals,
        reversed_minor=reversed_minor,
        now=now,
        timeout_seconds_max=limits.hold_timeout_seconds_max,
    )


def _write(
    connection: Connection,
    groups: Sequence[GroupRequest],
    applied: Sequence[tuple[int, list[Any]]],
    fingerprints: dict[int, str],
    state: BatchState,
    now: datetime,
) -> dict[int, tuple[TransferRecord, ...]]:
    # Balances first: their rows are locked already.
    _UPDATE_BALANCES.many(
        connection,
        [
            {
                "b_id": account.id,
                "b_dpe": account.debits_pending,
                "b_dpo": account.debits_posted,
                "b_cpe": account.credits_pending,
                "b_cpo": account.credits_posted,
            }
            for account in (state.accounts[i] for i in sorted(state.touched_accounts))
        ],
    )
    places = take_places(connection, sum(len(planned) for _, planned in applied))
    closed_at, previous_hash = places.closed_at, places.head_hash
    connection.info[_CLOSED_AT] = closed_at
    if closed_at is not None and now <= closed_at:
        # The month closed after this connection last looked; the balances written
        # above go with the caller's rollback.
        raise _closed_error(closed_at)
    next_ids = iter(places.ids)

    db_now = _db_time(connection, now)
    transfer_rows: list[tuple[Any, ...]] = []
    hold_rows: list[dict[str, Any]] = []
    hold_updates: list[dict[str, Any]] = []
    key_rows: list[tuple[Any, ...]] = []
    written: dict[int, tuple[TransferRecord, ...]] = {}
    for index, planned_list in applied:
        group = groups[index]
        initiator = group.initiator
        records = []
        transfer_ids = [next(next_ids) for _ in planned_list]
        group_id = transfer_ids[0]
        for transfer_id, planned in zip(transfer_ids, planned_list, strict=True):
            if previous_hash is not None:  # sealed as written (SQLite)
                previous_hash = transfer_hash(
                    previous_hash,
                    hash_fields(
                        transfer_id=transfer_id,
                        group_id=group_id,
                        planned=planned,
                        initiator=initiator,
                        created_at=now,
                    ),
                )
            record = TransferRecord(
                id=transfer_id,
                group_id=group_id,
                kind=str(planned.kind),
                debit_account_id=planned.debit_account_id,
                credit_account_id=planned.credit_account_id,
                asset=planned.asset,
                amount_minor=planned.amount_minor,
                pending_id=planned.pending_id,
                expires_at=planned.expires_at,
                reversal_of=planned.reversal_of,
                reason_code=planned.reason_code,
                reference=planned.reference,
                initiator_kind=initiator.kind,
                initiator_id=initiator.id,
                authenticated_by=initiator.authenticated_by,
                created_at=now,
                hash=previous_hash,
                chain_seq=transfer_id if previous_hash is not None else None,
            )
            records.append(record)
            transfer_rows.append(
                (
                    transfer_id,
                    group_id,
                    record.kind,
                    record.debit_account_id,
                    record.credit_account_id,
                    record.asset,
                    record.amount_minor,
                    record.pending_id,
                    _db_time(connection, record.expires_at),
                    record.reversal_of,
                    record.reason_code,
                    record.reference,
                    record.initiator_kind,
                    record.initiator_id,
                    record.authenticated_by,
                    db_now,
                    record.hash,
                    record.chain_seq,
                )
            )
            if planned.kind is TransferKind.pending:
                assert planned.expires_at is not None
                hold_rows.append(
                    {
                        "transfer_id": transfer_id,
                        "debit_account_id": planned.debit_account_id,
                        "credit_account_id": planned.credit_account_id,
                        "asset": planned.asset,
                        "amount_minor": planned.amount_minor,
                        "expires_at": planned.expires_at,
                        "status": HoldStatus.pending.value,
                        "resolved_by_id": None,
                    }
                )
            elif planned.pending_id is not None:
                hold_updates.append(
                    {
                        "b_id": planned.pending_id,
                        "b_status": state.holds[planned.pending_id].status,
                        "b_by": transfer_id,
                    }
                )
        if index in fingerprints:
            key_rows.append(
                (
                    group.idempotency_scope,
                    group.idempotency_key,
                    fingerprints[index],
                    group_id,
                    db_now,
                )
            )
        written[index] = tuple(records)

    _insert_rows(connection, "ledger_transfers", _TRANSFER_COLUMNS, transfer_rows)
    if hold_rows:
        connection.execute(_INSERT_HOLDS, hold_rows)
    if hold_updates:
        connection.execute(_UPDATE_HOLDS, hold_updates)
    if key_rows:
        try:
            _insert_rows(connection, "ledger_idempotency", _KEY_COLUMNS, key_rows)
        except IntegrityError as error:
            # A concurrent transaction committed one of these keys first. Run the whole
            # use case again: it will find the key and replay that result.
            raise RetryTransaction() from error
    if previous_hash is not None:
        UPDATE_HEAD.execute(connection, {"b_seq": places.ids[-1], "b_hash": previous_hash})
    return written


# The two bulk inserts of every batch go to the driver as plain tuples: SQLAlchemy's
# per-row parameter processing was the largest cost of a batched write. Timestamps
# are converted once per batch into what ``UtcDateTime`` stores (naive UTC text on
# SQLite, timestamptz on PostgreSQL); verify's hash check would catch any drift.
_TRANSFER_COLUMNS = tuple(field for field in TransferRecord.__dataclass_fields__)
_KEY_COLUMNS = ("scope", "key", "fingerprint", "group_id", "created_at")
_SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _db_time(connection: Connection, value: datetime | None) -> Any:
    if value is None or not _is_sqlite(connection):
        return value
    return value.astimezone(UTC).strftime(_SQLITE_TIME_FORMAT)


def _insert_rows(
    connection: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    # Table and column names are this module's constants, never input; values are bound.
    assert table in ("ledger_transfers", "ledger_idempotency")
    mark = "?" if _is_sqlite(connection) else "%s"
    statement = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608  # nosec B608
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    run_driver_sql(connection, statement, rows)


# One group, or one transfer, at a time: each raises the group's error instead of returning it.


def submit_one(
    session: Session,
    *,
    group: GroupRequest,
    now: datetime | None = None,
    limits: LedgerLimits = DEFAULT_LIMITS,
) -> GroupResult:
    """Apply one group; raise its error if it was refused."""
    return submit(session, groups=[group], now=now, limits=limits)[0].raise_for_error()


def submit_transfer(
    session: Session,
    request: TransferRequest,
    *,
    initiator: Initiator,
    idempotency_scope: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    limits: LedgerLimits = DEFAULT_LIMITS,
) -> TransferRecord:
    """Apply one transfer of any kind: a posting, a hold, its post or void, a reversal."""
    group = GroupRequest(
        transfers=(request,),
        initiator=initiator,
        idempotency_scope=idempotency_scope,
        idempotency_key=idempotency_key,
    )
    return submit_one(session, group=group, now=now, limits=limits).transfers[0]


def expire_overdue_holds(
    session: Session,
    *,
    now: datetime | None = None,
    limit: int = 500,
    limits: LedgerLimits = DEFAULT_LIMITS,
) -> int:
    """Release up to ``limit`` holds whose time ran out; returns how many.

    Safe in several processes at once: on PostgreSQL each run claims its holds
    with ``FOR UPDATE SKIP LOCKED``, so two workers take different holds; on
    SQLite writers are serialised. A hold that someone resolved meanwhile is
    skipped by the ledger's own status check.
    """
    connection = _require_transaction(session)
    now = now or utc_now()
    query = (
        select(_holds.c.transfer_id)
        .where(_holds.c.status == HoldStatus.pending.value, _holds.c.expires_at <= now)
        .order_by(_holds.c.expires_at, _holds.c.transfer_id)
        .limit(limit)
    )
    if connection.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    pending_ids = list(connection.execute(query).scalars())
    if not pending_ids:
        return 0
    results = submit(session, groups=[_expiry(p) for p in pending_ids], now=now, limits=limits)
    return sum(1 for result in results if result.ok)


def expire_hold(session: Session, *, pending_id: int, now: datetime | None = None) -> bool:
    """Release one hold whose time ran out, as the expiry job would; False if it was not
    pending any more (or has not run out: the ledger refuses to expire it early)."""
    _require_transaction(session)
    [result] = submit(session, groups=[_expiry(pending_id)], now=now)
    return result.ok


def _expiry(pending_id: int) -> GroupRequest:
    """The system's release of one hold whose time ran out."""
    return GroupRequest(
        transfers=(
            TransferRequest(
                kind=TransferKind.expire_pending, pending_id=pending_id, reason_code="hold_expired"
            ),
        ),
        initiator=SYSTEM_EXPIRY,
    )


def purge_idempotency_keys(
    session: Session, *, retention_seconds: int, now: datetime | None = None
) -> int:
    """Forget idempotency keys older than the retention (at least a day, per settings)."""
    connection = _require_transaction(session)
    cutoff = (now or utc_now()) - timedelta(seconds=retention_seconds)
    result = connection.execute(delete(_keys).where(_keys.c.created_at < cutoff))
    return int(result.rowcount or 0)
