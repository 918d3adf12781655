"""``purse bench ledger``: the ledger service against the bare SQL it stands on.

What is compared, and why (PERFORMANCE.md, "What `purse bench` reports"): a
wallet's hot path is a durable transfer, so the figure to track is how close
``purse.ledger.service`` comes to the fastest code that does the same database
work with nothing in between. Machines differ and this one is noisy, so every
figure is paired with its floor, measured in the same run, and the ratio is
what is tracked.

Four modes run the same workload (a fixed-seed list of small transfers between
random distinct wallets, a ``hot_share`` of them crediting one merchant wallet,
each with an idempotency key), each on a fresh database of its own, split over
``concurrency`` threads:

* ``service_per_commit``: one ``service.submit`` of one group per transaction,
  through ``Database.run`` (retries included).
* ``service_batched``: ``batch_size`` groups per ``service.submit`` and commit.
* ``raw_per_commit``: bare SQL (stdlib ``sqlite3`` with WAL and
  ``synchronous=FULL``, or ``psycopg``) doing the same work per transfer: read
  and check the balances (``FOR UPDATE`` in id order on PostgreSQL), update both
  balance rows, insert the transfer row (with a SHA-256 hash, unchained) and its
  idempotency row, commit.
* ``raw_batched``: the same SQL with ``batch_size`` transfers per commit.

The service does more than the floor on purpose (shape and field checks, an
idempotency look-up, the hash chain and its head row); the ratio shows what
that costs. Each mode stops after ``transfers`` transfers or ``seconds_max``
seconds, whichever comes first, and reports what it completed. Latency is per
call, i.e. per commit: in the batched modes a transfer is acknowledged only when
its whole batch commits, so its latency is the call's latency.

Everything stays local: a temporary SQLite file, or a ``purse_bench_*``
database created on a local PostgreSQL server (unix socket or loopback) and
dropped at the end.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import random
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from purse import migrate
from purse.db import Database
from purse.ledger import service
from purse.ledger.rules import (
    DEFAULT_LIMITS,
    GroupRequest,
    Initiator,
    TransferKind,
    TransferRequest,
)
from purse.ledger.verify import verify_ledger
from purse.settings import Environment, Settings

SEED: Final = 20_250_101
ASSET: Final = "CNY"
AMOUNT_MAX_MINOR: Final = 10_000  # transfers of 0.01 to 100.00 CNY
FUNDING_MINOR: Final = 10**11  # each wallet starts with 1 billion CNY: never runs dry
HOT: Final = -1  # the credit index that names the hot (merchant) account
REASON_CODE: Final = "bench"
IDEMPOTENCY_SCOPE: Final = "bench"
INITIATOR: Final = Initiator(kind="system", id="bench", authenticated_by="system")
SECRET_KEY: Final = SecretStr("b" * 40)
SQLITE_BUSY_TIMEOUT_SECONDS: Final = 30.0
ERROR_TEXT_LENGTH_MAX: Final = 300
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})

MODES: Final = ("service_per_commit", "service_batched", "raw_per_commit", "raw_batched")
# Run order: each service mode right after its floor, so a pair sees the same machine.
_RUN_ORDER: Final = ("raw_per_commit", "service_per_commit", "raw_batched", "service_batched")


@dataclass(frozen=True, slots=True)
class Move:
    """One transfer of the workload, naming wallets by index (``HOT`` for the merchant)."""

    index: int
    debit: int
    credit: int
    amount_minor: int
    key: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """A move resolved against the accounts of one database."""

    index: int
    debit_id: int
    credit_id: int
    amount_minor: int
    key: str


@dataclass(frozen=True, slots=True)
class Accounts:
    system_id: int
    wallet_ids: tuple[int, ...]
    hot_id: int

    def resolve(self, move: Move) -> Transfer:
        credit_id = self.hot_id if move.credit == HOT else self.wallet_ids[move.credit]
        return Transfer(
            index=move.index,
            debit_id=self.wallet_ids[move.debit],
            credit_id=credit_id,
            amount_minor=move.amount_minor,
            key=move.key,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """One fresh database: the URL purse uses, and how bare SQL reaches the same one."""

    database_url: str
    sqlite_path: Path | None = None  # SQLite
    conninfo: str | None = None  # PostgreSQL, for psycopg

    @property
    def is_sqlite(self) -> bool:
        return self.sqlite_path is not None


@dataclass(slots=True)
class WorkerResult:
    done: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None


ApplyChunk = Callable[[Sequence[Transfer]], int]  # returns how many were applied


# The workload.


def make_workload(*, transfers: int, accounts: int, hot_share: float) -> list[Move]:
    """The same transfers every run: a fixed seed, small amounts, distinct wallets."""
    rng = random.Random(SEED)  # a reproducible workload, not a secret
    moves: list[Move] = []
    for index in range(transfers):
        debit = rng.randrange(accounts)
        if rng.random() < hot_share:
            credit = HOT
        else:
            credit = rng.randrange(accounts - 1)
            credit += 1 if credit >= debit else 0
        amount = rng.randint(1, AMOUNT_MAX_MINOR)
        moves.append(Move(index, debit, credit, amount, f"bench-{index}"))
    return moves


def _chunks(items: Sequence[Transfer], size: int) -> list[Sequence[Transfer]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# Fresh databases.


class DatabaseFactory:
    """Hands out fresh, empty databases beside ``database_url`` and removes them."""

    def __init__(self, database_url: str | None) -> None:
        self.url: URL | None = None
        self.admin_conninfo: str | None = None
        self.sqlite_base: Path | None = None
        self.temp_dir: Path | None = None
        if database_url is not None and not database_url.startswith("sqlite"):
            url = make_url(database_url)
            if url.get_backend_name() not in {"postgresql", "postgres"}:
                raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
            self.url = url
            self.admin_conninfo = make_conninfo(
                url.set(drivername="postgresql").render_as_string(hide_password=False)
            )
            _require_local_postgres(self.admin_conninfo)
        elif database_url is not None:
            _, _, path = database_url.partition(":///")
            if path and path != ":memory:":
                self.sqlite_base = Path(path)

    @property
    def backend(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    @contextmanager
    def fresh(self, label: str) -> Iterator[Target]:
        """A new database for one mode, removed when the block ends."""
        if self.url is None:
            path = self._new_sqlite_path(label)
            try:
                yield Target(database_url=f"sqlite:///{path}", sqlite_path=path)
            finally:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        assert self.admin_conninfo is not None
        name = f"purse_bench_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin_conninfo, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield Target(
                database_url=self.url.set(database=name).render_as_string(hide_password=False),
                conninfo=make_conninfo(self.admin_conninfo, dbname=name),
            )
        finally:
            with psycopg.connect(self.admin_conninfo, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def _new_sqlite_path(self, label: str) -> Path:
        if self.sqlite_base is not None:
            base = self.sqlite_base
        else:
            if self.temp_dir is None:
                self.temp_dir = Path(tempfile.mkdtemp(prefix="purse-bench-"))
            base = self.temp_dir / "bench.db"
        while True:
            path = base.with_name(f"{base.name}.bench-{label}-{secrets.token_hex(4)}")
            if not any(Path(f"{path}{s}").exists() for s in ("", "-wal", "-shm", "-journal")):
                return path

    def server_version(self) -> str | None:
        if self.admin_conninfo is None:
            return None
        with psycopg.connect(self.admin_conninfo, autocommit=True) as admin:
            row = admin.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def _require_local_postgres(conninfo: str) -> None:
    """The bench creates and drops databases: only on a server on this machine."""
    params = conninfo_to_dict(conninfo)
    hosts = [h for h in str(params.get("host") or "").split(",") if h]
    hosts += [h for h in str(params.get("hostaddr") or "").split(",") if h]
    for host in hosts:
        if not (host.startswith("/") or host.startswith("@") or host in _LOCAL_HOSTS):
            raise ValueError(
                f"the ledger bench runs against a local PostgreSQL only "
                f"(unix socket or loopback), not {host!r}"
            )


def _purse_database(target: Target, pool_size: int) -> Database:
    settings = Settings(
        database_url=target.database_url,
        secret_key=SECRET_KEY,
        env=Environment.test,
        db_pool_size=pool_size,
    )
    return Database(settings)


def _set_up(db: Database, accounts: int) -> Accounts:
    """Migrate, open the accounts and fund every wallet from the system account."""
    migrate.upgrade(db)

    def open_all(session: Session) -> Accounts:
        def wallet(owner_kind: str, owner_id: str) -> int:
            return service.open_account(
                session,
                asset=ASSET,
                owner_kind=owner_kind,
                owner_id=owner_id,
                kind="wallet",
                debits_must_not_exceed_credits=True,
            ).id

        system = service.open_account(
            session,
            asset=ASSET,
            owner_kind="system",
            owner_id="bench",
            kind="funding",
            debits_must_not_exceed_credits=False,
        )
        wallets = tuple(wallet("user", f"bench-{i}") for i in range(accounts))
        return Accounts(system.id, wallets, hot_id=wallet("merchant", "bench-hot"))

    ids = db.run(open_all)
    funding = [
        GroupRequest(
            transfers=(
                TransferRequest(
                    reason_code="bench_funding",
                    debit_account_id=ids.system_id,
                    credit_account_id=wallet_id,
                    asset=ASSET,
                    amount_minor=FUNDING_MINOR,
                ),
            ),
            initiator=INITIATOR,
        )
        for wallet_id in ids.wallet_ids
    ]
    step = DEFAULT_LIMITS.batch_size_max
    for start in range(0, len(funding), step):
        for result in db.run(partial(service.submit, groups=funding[start : start + step])):
            result.raise_for_error()
    return ids


# The service side.


def _group(transfer: Transfer) -> GroupRequest:
    return GroupRequest(
        transfers=(
            TransferRequest(
                reason_code=REASON_CODE,
                kind=TransferKind.posted,
                debit_account_id=transfer.debit_id,
                credit_account_id=transfer.credit_id,
                asset=ASSET,
                amount_minor=transfer.amount_minor,
            ),
        ),
        initiator=INITIATOR,
        idempotency_scope=IDEMPOTENCY_SCOPE,
        idempotency_key=transfer.key,
    )


def _service_apply(db: Database) -> ApplyChunk:
    def apply(chunk: Sequence[Transfer]) -> int:
        groups = [_group(transfer) for transfer in chunk]
        results = db.run(lambda session: service.submit(session, groups=groups))
        return sum(1 for result in results if result.ok)

    return apply


def _warm_pool(db: Database, connections: int) -> None:
    """Open the pool's connections before the clock starts, as raw SQL does."""
    opened = [db.engine.connect() for _ in range(connections)]
    for connection in opened:
        connection.close()


# The raw-SQL floor.


_SELECT_BALANCES: Final = (
    "SELECT id, debits_must_not_exceed_credits, debits_pending, debits_posted, credits_posted "
    "FROM ledger_accounts"
)
_INSERT_TRANSFER: Final = (
    "INSERT INTO ledger_transfers (id, group_id, kind, debit_account_id, credit_account_id, "
    "asset, amount_minor, reason_code, initiator_kind, initiator_id, authenticated_by, "
    "created_at, hash) VALUES (%s, %s, 'posted', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_KEY: Final = (
    "INSERT INTO ledger_idempotency (scope, key, fingerprint, group_id, created_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)


class RawLedger:
    """The same balance check, updates and inserts as the service, in bare SQL.

    One instance per thread (one connection each). On SQLite, writers of this
    process queue on a lock before ``BEGIN IMMEDIATE``, as purse's do, so the
    floor is not slowed by SQLite's sleeping busy handler either.
    """

    def __init__(self, target: Target, sqlite_writers: threading.Lock) -> None:
        self.is_sqlite = target.is_sqlite
        self.sqlite_writers = sqlite_writers
        self.sqlite: sqlite3.Connection | None = None
        self.pg: psycopg.Connection[tuple[Any, ...]] | None = None
        if target.sqlite_path is not None:
            self.sqlite = sqlite3.connect(
                target.sqlite_path,
                timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            self.sqlite.execute("PRAGMA journal_mode=WAL")
            self.sqlite.execute("PRAGMA synchronous=FULL")
            self.sqlite.execute("PRAGMA foreign_keys=ON")
        else:
            assert target.conninfo is not None
            self.pg = psycopg.connect(target.conninfo, autocommit=False)

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            self.pg.close()

    def apply(self, chunk: Sequence[Transfer], id_base: int) -> int:
        """Apply ``chunk`` in one transaction; returns how many transfers passed the check."""
        account_ids = sorted({t.debit_id for t in chunk} | {t.credit_id for t in chunk})
        if self.sqlite is not None:
            with self.sqlite_writers:
                return self._apply_sqlite(self.sqlite, chunk, account_ids, id_base)
        assert self.pg is not None
        return self._apply_pg(self.pg, chunk, account_ids, id_base)

    def _apply_sqlite(
        self,
        connection: sqlite3.Connection,
        chunk: Sequence[Transfer],
        account_ids: list[int],
        id_base: int,
    ) -> int:
        now = datetime.now(UTC)
        connection.execute("BEGIN IMMEDIATE")
        try:
            marks = ",".join("?" * len(account_ids))  # placeholders only: no values in the SQL
            query = f"{_SELECT_BALANCES} WHERE id IN ({marks}) ORDER BY id"
            rows = connection.execute(query, account_ids).fetchall()
            # SQLite keeps datetimes as naive UTC text, as purse's UtcDateTime writes them.
            stamp = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            balances, transfers, keys = _plan(rows, chunk, id_base, stamp)
            connection.executemany(
                "UPDATE ledger_accounts SET debits_posted = ?, credits_posted = ? WHERE id = ?",
                [(b.debits_posted, b.credits_posted, i) for i, b in balances.items()],
            )
            connection.executemany(_INSERT_TRANSFER.replace("%s", "?"), transfers)
            connection.executemany(_INSERT_KEY.replace("%s", "?"), keys)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return len(transfers)

    def _apply_pg(
        self,
        connection: psycopg.Connection[tuple[Any, ...]],
        chunk: Sequence[Transfer],
        account_ids: list[int],
        id_base: int,
    ) -> int:
        now = datetime.now(UTC)
        try:
            with connection.cursor() as cursor:
                rows = cursor.execute(
                    f"{_SELECT_BALANCES} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                    (account_ids,),
                ).fetchall()
                balances, transfers, keys = _plan(rows, chunk, id_base, now)
                cursor.executemany(
                    "UPDATE ledger_accounts SET debits_posted = %s, credits_posted = %s "
                    "WHERE id = %s",
                    [(b.debits_posted, b.credits_posted, i) for i, b in balances.items()],
                )
                cursor.executemany(_INSERT_TRANSFER, transfers)
                cursor.executemany(_INSERT_KEY, keys)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return len(transfers)


@dataclass(slots=True)
class _Balance:
    must_not_go_negative: bool
    debits_pending: int
    debits_posted: int
    credits_posted: int


def _plan(
    rows: Sequence[Sequence[Any]], chunk: Sequence[Transfer], id_base: int, stamp: object
) -> tuple[dict[int, _Balance], list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Check and apply ``chunk`` against the locked ``rows``.

    Returns the new balances of the accounts touched, and the transfer and
    idempotency rows to insert. A transfer that fails the balance check is left out.
    """
    loaded = {int(row[0]): _Balance(bool(row[1]), row[2], row[3], row[4]) for row in rows}
    touched: dict[int, _Balance] = {}
    transfers: list[tuple[object, ...]] = []
    keys: list[tuple[object, ...]] = []
    for t in chunk:
        debit, credit = loaded.get(t.debit_id), loaded.get(t.credit_id)
        if debit is None or credit is None:
            continue
        available = debit.credits_posted - debit.debits_posted - debit.debits_pending
        if debit.must_not_go_negative and available < t.amount_minor:
            continue  # insufficient funds
        debit.debits_posted += t.amount_minor
        credit.credits_posted += t.amount_minor
        touched[t.debit_id], touched[t.credit_id] = debit, credit
        transfer_id = id_base + t.index
        request = f"{t.debit_id}|{t.credit_id}|{ASSET}|{t.amount_minor}"
        digest = hashlib.sha256(f"{transfer_id}|{request}|{stamp}".encode()).hexdigest()
        fingerprint = hashlib.sha256(request.encode()).hexdigest()
        transfers.append(
            (
                transfer_id,
                transfer_id,
                t.debit_id,
                t.credit_id,
                ASSET,
                t.amount_minor,
                REASON_CODE,
                INITIATOR.kind,
                INITIATOR.id,
                INITIATOR.authenticated_by,
                stamp,
                digest,
            )
        )
        keys.append((IDEMPOTENCY_SCOPE, t.key, fingerprint, transfer_id, stamp))
    return touched, transfers, keys


def _raw_sums_ok(target: Target, done: int, setup_transfers: int) -> bool:
    """A floor that did its work: balances sum to zero and every transfer row is there."""
    query_sum = "SELECT COALESCE(SUM(credits_posted - debits_posted), 0) FROM ledger_accounts"
    query_count = "SELECT COUNT(*) FROM ledger_transfers"
    if target.sqlite_path is not None:
        with _closing_sqlite(target.sqlite_path) as connection:
            total = connection.execute(query_sum).fetchone()
            count = connection.execute(query_count).fetchone()
    else:
        assert target.conninfo is not None
        with psycopg.connect(target.conninfo, autocommit=True) as connection:
            total = connection.execute(query_sum).fetchone()
            count = connection.execute(query_count).fetchone()
    assert total is not None and count is not None
    return int(total[0]) == 0 and int(count[0]) == setup_transfers + done


@contextmanager
def _closing_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
    try:
        yield connection
    finally:
        connection.close()


# Measuring.


class _Clock:
    """Started by the last thread to reach the start line; every thread reads the deadline."""

    def __init__(self, seconds_max: float) -> None:
        self.seconds_max = seconds_max
        self.started = 0.0
        self.deadline = math.inf

    def start(self) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + self.seconds_max


def _run_threads(
    applies: Sequence[ApplyChunk], shares: Sequence[list[Sequence[Transfer]]], seconds_max: float
) -> tuple[list[WorkerResult], float]:
    """Run each thread's chunks from one start line until done or out of time."""
    clock = _Clock(seconds_max)
    start_line = threading.Barrier(len(applies), action=clock.start)
    results = [WorkerResult() for _ in applies]

    def work(apply: ApplyChunk, chunks: list[Sequence[Transfer]], result: WorkerResult) -> None:
        start_line.wait()
        for chunk in chunks:
            if time.perf_counter() >= clock.deadline:
                return
            began = time.perf_counter()
            try:
                applied = apply(chunk)
            except Exception as error:  # counted and reported, the run goes on
                applied = 0
                if result.first_error is None:
                    result.first_error = f"{type(error).__name__}: {error}"[:ERROR_TEXT_LENGTH_MAX]
            result.latencies.append(time.perf_counter() - began)
            result.done += applied
            result.errors += len(chunk) - applied

    threads = [
        threading.Thread(target=work, args=(apply, chunks, result), name=f"bench-{i}")
        for i, (apply, chunks, result) in enumerate(zip(applies, shares, results, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - clock.started


def _percentile_ms(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds (0 with no samples)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(share * len(ordered)))
    return round(ordered[rank - 1] * 1000, 3)


def _summarise(
    results: Sequence[WorkerResult], seconds: float, *, planned: int, per_call: int
) -> dict[str, Any]:
    latencies = sorted(s for result in results for s in result.latencies)
    done = sum(result.done for result in results)
    errors = sum(result.errors for result in results)
    p50, p99 = _percentile_ms(latencies, 0.50), _percentile_ms(latencies, 0.99)
    first_error = next((r.first_error for r in results if r.first_error is not None), None)
    return {
        "transfers": done,
        "errors": errors,
        "stopped_by": "count" if done + errors >= planned else "time",
        "calls": len(latencies),
        "transfers_per_call": per_call,
        "seconds": round(seconds, 3),
        "transfers_per_second": round(done / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "transfer_p50_ms": p50,
        "transfer_p99_ms": p99,
        "latency_note": (
            "per call, i.e. per commit; a transfer is acknowledged when its call commits, "
            "so per-transfer latency equals call latency"
            + (f" (the whole batch of {per_call})" if per_call > 1 else "")
        ),
        "first_error": first_error,
    }


def _thread_shares(
    transfers: Sequence[Transfer], concurrency: int, per_call: int
) -> list[list[Sequence[Transfer]]]:
    return [_chunks(transfers[i::concurrency], per_call) for i in range(concurrency)]


def _measure_mode(
    factory: DatabaseFactory,
    mode: str,
    moves: Sequence[Move],
    *,
    accounts: int,
    concurrency: int,
    per_call: int,
    seconds_max: float,
) -> dict[str, Any]:
    """Set up a fresh database through purse, then time ``mode`` on it."""
    with factory.fresh(mode) as target:
        db = _purse_database(target, pool_size=max(10, concurrency))
        try:
            ids = _set_up(db, accounts)
            shares = _thread_shares([ids.resolve(move) for move in moves], concurrency, per_call)
            if mode.startswith("service"):
                return _measure_service(
                    db, shares, planned=len(moves), per_call=per_call, seconds_max=seconds_max
                )
        finally:
            db.dispose()
        # After the funding transfers, whose ids are 1..accounts.
        id_base = len(ids.wallet_ids) + 1
        summary = _measure_raw(
            target,
            shares,
            id_base=id_base,
            planned=len(moves),
            per_call=per_call,
            seconds_max=seconds_max,
        )
        summary["sums_ok"] = _raw_sums_ok(target, summary["transfers"], len(ids.wallet_ids))
        return summary


def _measure_service(
    db: Database,
    shares: list[list[Sequence[Transfer]]],
    *,
    planned: int,
    per_call: int,
    seconds_max: float,
) -> dict[str, Any]:
    _warm_pool(db, len(shares))
    apply = _service_apply(db)
    results, seconds = _run_threads([apply] * len(shares), shares, seconds_max)
    summary = _summarise(results, seconds, planned=planned, per_call=per_call)
    report = db.run(verify_ledger, write=False)
    summary["verify_ok"] = report.ok
    summary["verify_problems"] = len(report.problems)
    return summary


def _measure_raw(
    target: Target,
    shares: list[list[Sequence[Transfer]]],
    *,
    id_base: int,
    planned: int,
    per_call: int,
    seconds_max: float,
) -> dict[str, Any]:
    writers = threading.Lock()
    raws = [RawLedger(target, writers) for _ in shares]
    try:
        applies = [partial(raw.apply, id_base=id_base) for raw in raws]
        results, seconds = _run_threads(applies, shares, seconds_max)
    finally:
        for raw in raws:
            raw.close()
    return _summarise(results, seconds, planned=planned, per_call=per_call)


def _ratio(modes: dict[str, dict[str, Any]], service_mode: str, raw_mode: str) -> float:
    raw = float(modes[raw_mode]["transfers_per_second"])
    return round(float(modes[service_mode]["transfers_per_second"]) / raw, 3) if raw else 0.0


def run_ledger_bench(
    *,
    transfers: int,
    accounts: int,
    concurrency: int,
    hot_share: float,
    database_url: str | None,
    batch_size: int,
    seconds_max: float,
) -> dict[str, Any]:
    """Measure the four modes, each on a fresh database; a JSON-serialisable report."""
    if transfers < 1:
        raise ValueError("transfers must be at least 1")
    if accounts < 2:
        raise ValueError("accounts must be at least 2 (transfers go between distinct wallets)")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not 0.0 <= hot_share <= 1.0:
        raise ValueError("hot_share must be between 0 and 1")
    if not 1 <= batch_size <= DEFAULT_LIMITS.batch_size_max:
        raise ValueError(f"batch_size must be 1 to {DEFAULT_LIMITS.batch_size_max}")
    if not seconds_max > 0:
        raise ValueError("seconds_max must be positive")

    moves = make_workload(transfers=transfers, accounts=accounts, hot_share=hot_share)
    factory = DatabaseFactory(database_url)
    try:
        measured = {
            mode: _measure_mode(
                factory,
                mode,
                moves,
                accounts=accounts,
                concurrency=concurrency,
                per_call=batch_size if mode.endswith("batched") else 1,
                seconds_max=seconds_max,
            )
            for mode in _RUN_ORDER
        }
        server_version = factory.server_version()
    finally:
        factory.close()
    modes = {mode: measured[mode] for mode in MODES}
    return {
        "benchmark": "ledger",
        "backend": factory.backend,
        "parameters": {
            "transfers": transfers,
            "accounts": accounts,
            "concurrency": concurrency,
            "hot_share": hot_share,
            "batch_size": batch_size,
            "seconds_max": seconds_max,
            "seed": SEED,
        },
        "modes": modes,
        "ratios": {
            "service_per_commit_vs_raw_per_commit": _ratio(
                modes, "service_per_commit", "raw_per_commit"
            ),
            "service_batched_vs_raw_batched": _ratio(modes, "service_batched", "raw_batched"),
        },
        "verify_ok": all(modes[m]["verify_ok"] for m in MODES if m.startswith("service")),
        "environment": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "postgresql": server_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
