"""The transaction helper: pragmas, read/write transactions, bounded retries."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import psycopg.errors
import pytest
from sqlalchemy import Table, bindparam, event, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from factories import make_settings
from purse.db import Database, RetryTransaction, is_retryable, sqlalchemy_url
from purse.errors import DatabaseBusy
from purse.ledger.models import ChainHead
from purse.prepared import Prepared

T = TypeVar("T")


def test_sqlite_is_durable_and_strict(sqlite_url: str) -> None:
    database = Database(make_settings(sqlite_url))
    with database.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 30000,
    }
    database.dispose()


def test_urls_pick_our_drivers() -> None:
    assert sqlalchemy_url("sqlite:///purse.db") == "sqlite+pysqlite:///purse.db"
    assert sqlalchemy_url("postgresql://u:p@h/db").startswith("postgresql+psycopg://u:p@h/db")


def test_run_retries_transient_conflicts_then_gives_up(database: Database) -> None:
    attempts: list[int] = []

    def flaky(session: object) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RetryTransaction()
        return "done"

    assert database.run(flaky) == "done" and len(attempts) == 3

    def always(session: object) -> None:
        raise RetryTransaction()

    with pytest.raises(DatabaseBusy):
        database.run(always)


def test_a_failure_rolls_the_whole_use_case_back(database: Database) -> None:
    def half(session: object) -> None:
        session.execute(text("UPDATE ledger_chain SET head_hash = 'half' WHERE id = 1"))  # type: ignore[attr-defined]
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        database.run(half)
    head = database.run(
        lambda s: s.execute(text("SELECT head_hash FROM ledger_chain")).scalar_one(), write=False
    )
    assert head == "0" * 64


def test_what_counts_as_transient() -> None:
    def wrap(original: Exception, cls: type[Exception] = OperationalError) -> Exception:
        return cls("statement", {}, original)

    assert is_retryable(RetryTransaction())
    assert is_retryable(wrap(sqlite3.OperationalError("database is locked")))
    assert is_retryable(wrap(psycopg.errors.SerializationFailure("could not serialize")))
    assert is_retryable(wrap(psycopg.errors.DeadlockDetected("deadlock detected")))
    assert not is_retryable(wrap(sqlite3.OperationalError("no such table: x")))
    assert not is_retryable(
        wrap(sqlite3.IntegrityError("UNIQUE constraint failed"), IntegrityError)
    )
    assert not is_retryable(ValueError("boom"))


def test_migrations_build_exactly_the_tables_of_the_models(database: Database) -> None:
    """A model changed without a migration (or the reverse) shows up here, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from purse.migrate import target_metadata

    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, target_metadata())
    assert differences == []


def test_a_lost_database_is_unavailable_not_an_internal_error(tmp_path: object) -> None:
    """PostgreSQL refusing connections (restarting, say) is a 503 the caller retries."""
    from purse.errors import DatabaseUnavailable
    from purse.jobs import Job
    from purse.workers.runner import JobRunner, backoff_seconds

    settings = make_settings("postgresql://nobody@/purse?host=/nonexistent-socket-folder")
    database = Database(settings)
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            database.run(lambda s: s.execute(text("SELECT 1")).scalar_one())
        assert raised.value.status == 503 and raised.value.retryable
        with pytest.raises(DatabaseUnavailable):  # authentication's read, in autocommit
            on_a_loop_of_its_own(database.read_one_async(CHAIN_HEAD, {"id": 1}))
        # The worker keeps one traceback per failure streak and backs off while all jobs fail.
        probe = Job("probe", lambda db: db.run(lambda s: s.execute(text("SELECT 1")).scalar_one()))
        runner = JobRunner(database, jobs=[probe])
        assert runner.run_once() == {"probe": -1} and runner.run_once() == {"probe": -1}
        assert runner._failures == {"probe": 2}
    finally:
        database.dispose()
    assert [backoff_seconds(1.0, n) for n in (0, 1, 2, 5, 10)] == [1.0, 2.0, 4.0, 30.0, 30.0]


def test_waits_for_a_connection_or_a_turn_to_write_are_short(database_url: str) -> None:
    """Every pooled connection in use, or SQLite's writer busy: 503 database_busy, quickly."""
    database = Database(make_settings(database_url, db_pool_size=1, db_wait_seconds=0.3))
    release = threading.Event()
    holding = threading.Barrier(3 if not database.is_sqlite else 2)

    def hold(write: bool) -> None:
        with database.transaction(write=write) as session:
            session.execute(text("SELECT 1"))
            holding.wait(timeout=10)
            release.wait(timeout=10)

    # SQLite: one writer holds the write turn. PostgreSQL: two readers hold both connections
    # (pool size 1 and as many again in overflow).
    holders = [
        threading.Thread(target=hold, args=(database.is_sqlite,))
        for _ in range(holding.parties - 1)
    ]
    for holder in holders:
        holder.start()
    try:
        holding.wait(timeout=10)
        started = time.monotonic()
        with pytest.raises(DatabaseBusy):
            database.run(lambda session: session.execute(text("SELECT 1")).scalar())
        assert time.monotonic() - started < 2  # was 30 s for either wait
    finally:
        release.set()
        for holder in holders:
            holder.join(timeout=10)
        database.dispose()


def test_the_line_for_the_writer_is_counted(sqlite_url: str) -> None:
    """On SQLite, transactions waiting for the writer's turn are counted (on /metrics as
    purse_db_writers_waiting), and leave the count when they get it or give up."""
    database = Database(make_settings(sqlite_url, db_wait_seconds=5))
    waiters = [
        threading.Thread(
            target=database.run, args=(lambda s: s.execute(text("SELECT 1")).scalar(),)
        )
        for _ in range(2)
    ]
    try:
        with database.transaction(write=True):
            for waiter in waiters:
                waiter.start()
            deadline = time.monotonic() + 5
            while database.writers_waiting < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert database.writers_waiting == 2
        for waiter in waiters:
            waiter.join(timeout=10)
        assert database.writers_waiting == 0
    finally:
        database.dispose()


def locked_for_half_a_second(database: Database) -> threading.Timer:
    """SQLite's file held by a connection in exclusive locking mode, which keeps every
    other reader out until it closes, half a second from now (join the timer)."""
    path = str(database.settings.sqlite_path())
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("UPDATE ledger_chain SET head_hash = head_hash")
    locker.execute("COMMIT")  # still held: exclusive mode keeps the lock after a write
    unlock = threading.Timer(0.5, locker.close)
    unlock.start()
    return unlock


def on_a_loop_of_its_own(awaitable: Coroutine[Any, Any, T]) -> tuple[T, str]:
    """Await on an event loop in a thread of its own (as uvicorn's), and name that thread.

    Not in the test's thread: the browser tests leave Playwright's loop running there.
    """

    async def awaiting() -> tuple[T, str]:
        return await awaitable, threading.current_thread().name

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="loop") as pool:
        return pool.submit(asyncio.run, awaiting()).result(timeout=60)


def test_a_read_for_the_event_loop_runs_there_on_sqlite_and_waits_for_no_writer(
    database: Database,
) -> None:
    """read_async: on SQLite on the loop's own thread, beside a writer in the middle of its
    transaction; on PostgreSQL on a worker thread (its reads go over the network)."""
    ran_on: list[str] = []

    def read(session: Session) -> str:
        ran_on.append(threading.current_thread().name)
        return str(session.execute(text("SELECT head_hash FROM ledger_chain")).scalar_one())

    writing, release = threading.Event(), threading.Event()

    def writer(session: Session) -> None:
        session.execute(text("UPDATE ledger_chain SET head_hash = 'uncommitted' WHERE id = 1"))
        writing.set()
        release.wait(timeout=10)
        raise RetryTransaction()  # let nothing of it stay: the next attempt does nothing

    def write_once() -> None:
        attempts: list[int] = []

        def once(session: Session) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                writer(session)

        database.run(once)

    thread = threading.Thread(target=write_once)
    thread.start()
    try:
        assert writing.wait(timeout=10)
        started = time.monotonic()
        seen, loop_thread = on_a_loop_of_its_own(database.read_async(read))
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join(timeout=10)
    assert seen != "uncommitted"  # the writer's transaction was still open
    if database.is_sqlite:
        assert ran_on == [loop_thread]
        assert waited < 5  # not the busy timeout, nor the writer's 10 s
    else:
        assert ran_on and ran_on[0] != loop_thread


def test_a_read_for_the_event_loop_goes_to_a_worker_when_sqlite_is_busy(sqlite_url: str) -> None:
    """In SQLite's rare busy moments the loop does not wait: the read goes to a thread."""
    database = Database(make_settings(sqlite_url))
    database.run(lambda s: s.execute(text("SELECT 1")))  # the file exists, in WAL mode
    database.dispose()  # an open connection in WAL mode would keep the exclusive lock out
    ran_on: list[str] = []

    def read(session: Session) -> int:
        ran_on.append(threading.current_thread().name)
        return int(session.execute(text("SELECT count(*) FROM ledger_chain")).scalar_one())

    unlock = locked_for_half_a_second(database)
    try:
        started = time.monotonic()
        counted, loop_thread = on_a_loop_of_its_own(database.read_async(read))
        assert counted == 1
        waited = time.monotonic() - started
    finally:
        unlock.join(timeout=10)
        database.dispose()
    assert ran_on and ran_on[-1] != loop_thread
    assert waited >= 0.4  # it could only answer once the lock was gone


ledger_chain = cast(Table, ChainHead.__table__)
CHAIN_HEAD = Prepared(select(ledger_chain.c.head_hash).where(ledger_chain.c.id == bindparam("id")))


def test_one_statement_for_the_event_loop_runs_there_with_no_transaction(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read_one_async: on SQLite right on the loop, beside a writer in the middle of its
    transaction, and no worker thread; on PostgreSQL through a worker's read."""
    worker_reads: list[str] = []
    run, read_one_alone = database.run, database._read_one_alone

    def spied(use_case: Any, *, write: bool = True) -> Any:
        if not write:
            worker_reads.append(threading.current_thread().name)
        return run(use_case, write=write)

    def spied_alone(*args: Any) -> Any:
        worker_reads.append(threading.current_thread().name)
        return read_one_alone(*args)

    monkeypatch.setattr(database, "run", spied)
    monkeypatch.setattr(database, "_read_one_alone", spied_alone)
    writing, release = threading.Event(), threading.Event()

    def writer(session: Session) -> None:
        session.execute(text("UPDATE ledger_chain SET head_hash = 'uncommitted' WHERE id = 1"))
        writing.set()
        release.wait(timeout=10)
        raise ValueError("nothing of it stays")

    def write_once() -> None:
        with pytest.raises(ValueError, match="nothing"):
            run(writer)

    thread = threading.Thread(target=write_once)
    thread.start()
    try:
        assert writing.wait(timeout=10)
        started = time.monotonic()
        row, loop_thread = on_a_loop_of_its_own(database.read_one_async(CHAIN_HEAD, {"id": 1}))
        missing, _ = on_a_loop_of_its_own(database.read_one_async(CHAIN_HEAD, {"id": 2}))
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join(timeout=10)
    assert row.head_hash not in {None, "uncommitted"}
    assert missing is None
    if database.is_sqlite:
        assert worker_reads == []
        assert waited < 5  # not the busy timeout, nor the writer's 10 s
    else:
        assert len(worker_reads) == 2 and loop_thread not in worker_reads


def test_one_statement_on_postgresql_runs_in_autocommit(postgres_url: str) -> None:
    """No BEGIN before it: the transaction is the statement's own, so it started with
    the statement (after a BEGIN it would have started a round trip earlier)."""
    database = Database(make_settings(postgres_url))
    alone = Prepared(select((func.now() == func.statement_timestamp()).label("alone")))
    try:
        rows = [on_a_loop_of_its_own(database.read_one_async(alone, {}))[0] for _ in range(3)]
        in_transaction = database.run(lambda session: alone.first(session, {}), write=False)
    finally:
        database.dispose()
    assert [row.alone for row in rows] == [True, True, True]
    assert in_transaction.alone is False  # the check can tell


def test_a_statement_alone_commits_by_itself_and_counts_its_rows(database: Database) -> None:
    """execute_alone: the change is there for every other connection once it returns (on
    PostgreSQL in autocommit, with no transaction of its own; on SQLite a group commit),
    and the row count says whether it matched."""
    set_hash = Prepared(
        update(ledger_chain)
        .where(ledger_chain.c.id == bindparam("b_id"))
        .values(head_hash=bindparam("b_hash"))
    )
    before = database.run(lambda s: CHAIN_HEAD.first(s, {"id": 1}), write=False).head_hash
    try:
        assert database.execute_alone(set_hash, {"b_id": 1, "b_hash": "f" * 64}) == 1
        assert database.execute_alone(set_hash, {"b_id": 2, "b_hash": "e" * 64}) == 0
        with database.engine.connect() as other:
            assert other.execute(select(ledger_chain.c.head_hash)).scalar_one() == "f" * 64
    finally:
        database.execute_alone(set_hash, {"b_id": 1, "b_hash": before})


def test_single_reads_on_the_loop_share_a_connection_but_never_a_snapshot(
    sqlite_url: str,
) -> None:
    """The loop thread keeps its connection for read_one_async between reads, and no
    transaction: each read sees what was committed before it, also when statement
    events make SQLAlchemy run the read (and begin a transaction of its own)."""
    database = Database(make_settings(sqlite_url))
    assert database._here_engine is not None
    statements: list[str] = []
    try:

        def set_hash(value: str) -> None:
            database.run(
                lambda s: s.execute(
                    update(ledger_chain).where(ledger_chain.c.id == 1).values(head_hash=value)
                )
            )

        async def read_twice() -> list[tuple[str, int]]:
            seen = []
            for value in ("a" * 64, "b" * 64):
                set_hash(value)
                row = await database.read_one_async(CHAIN_HEAD, {"id": 1})
                seen.append((row.head_hash, id(database._here_connection())))
            return seen

        plain, _ = on_a_loop_of_its_own(read_twice())
        event.listen(
            database._here_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
        watched, _ = on_a_loop_of_its_own(read_twice())
    finally:
        database.dispose()
    for seen in (plain, watched):
        assert [value for value, _ in seen] == ["a" * 64, "b" * 64]
        assert seen[0][1] == seen[1][1]  # one connection for the thread's reads
    assert sum("ledger_chain" in statement for statement in statements) == 2


def test_a_kept_connection_closed_under_it_is_replaced(sqlite_url: str) -> None:
    """SQLite's per-thread pool closes the connections of its oldest threads once more
    threads than its size have one: the kept connection is then dropped, and the read
    still answers (on a worker thread, and here again the next time)."""
    database = Database(make_settings(sqlite_url))

    async def read_after_a_close() -> list[str]:
        first = await database.read_one_async(CHAIN_HEAD, {"id": 1})
        kept = database._here_connection()
        driver = kept.connection.dbapi_connection
        assert driver is not None
        driver.close()  # as the pool's clean-up does
        second = await database.read_one_async(CHAIN_HEAD, {"id": 1})
        third = await database.read_one_async(CHAIN_HEAD, {"id": 1})
        assert database._here_connection() is not kept
        return [first.head_hash, second.head_hash, third.head_hash]

    try:
        hashes, _ = on_a_loop_of_its_own(read_after_a_close())
    finally:
        database.dispose()
    assert len(set(hashes)) == 1 and hashes[0]


def test_one_statement_for_the_event_loop_goes_to_a_worker_when_sqlite_is_busy(
    sqlite_url: str,
) -> None:
    database = Database(make_settings(sqlite_url))
    database.run(lambda s: s.execute(text("SELECT 1")))  # the file exists, in WAL mode
    database.dispose()
    unlock = locked_for_half_a_second(database)
    try:
        started = time.monotonic()
        row, _ = on_a_loop_of_its_own(database.read_one_async(CHAIN_HEAD, {"id": 1}))
        waited = time.monotonic() - started
    finally:
        unlock.join(timeout=10)
        database.dispose()
    assert row is not None and row.head_hash
    assert waited >= 0.4  # it could only answer once the lock was gone
