"""Engines, sessions, and the one helper that runs a use case in a DB transaction.

Why the transaction helper looks the way it does:

* SQLite allows one writer at a time. A write transaction takes the write lock
  at ``BEGIN IMMEDIATE``, before it reads anything, so two writers never both
  read a balance and then race to upgrade their locks (which SQLite answers with
  "database is locked" immediately, busy timeout or not). Read transactions use
  a plain deferred ``BEGIN`` and run beside the writer thanks to WAL. Within one
  process, writers also queue on a lock before ``BEGIN IMMEDIATE``: SQLite's own
  busy handler polls with growing sleeps, which under contention wastes most of
  the time the write lock is free. The busy timeout still covers other processes.
* Waits are short: a transaction waits at most ``PURSE_DB_WAIT_SECONDS`` for a pooled
  connection or its turn among SQLite writers, then the request is answered 503
  ``database_busy`` with Retry-After. A wait as long as a client's timeout only turns
  an answer into a timeout, and the work into work for nobody (see purse.web.limits).
* PostgreSQL runs writes at READ COMMITTED with explicit row locks taken in a
  fixed order (see the ledger), and reads at REPEATABLE READ so a snapshot of
  many balances is consistent.
* Group commit (SQLite): a disk sync per payment would make the disk the limit,
  and each transaction's BEGIN and COMMIT cost more than a payment's rows. So
  write use cases go to one committer thread (:class:`GroupCommitter`), which
  runs those waiting together in one transaction, each in a savepoint of its
  own and a session of its own. A use case that fails rolls back to its
  savepoint alone; the others go on. Callers are answered only after the
  COMMIT, so nothing acknowledged can be lost, even to kill -9. PostgreSQL keeps
  one transaction per use case: a batch would hold the row locks of many use
  cases at once, in no single order, and batches of two processes could
  deadlock on them. Its WAL writer already shares one flush among the commits
  waiting for it, and its payments lock only the accounts they move (the ledger's
  hash chain is sealed after the commit: purse.ledger.sealer).
* Callers on the event loop (the payment routes, authentication) use ``run_async``,
  ``read_async`` and ``read_one_async`` (one statement, no transaction around it:
  authentication's read). A write on SQLite is awaited from the committer with no worker
  thread waiting for it. A short read on SQLite runs on the loop's own thread with a
  connection of that thread's own: in WAL mode a read never waits for the writer, and
  a round trip to a worker thread costs more than the read. When SQLite is busy, and
  always on PostgreSQL (reads over the network), reads go to a worker thread; there
  ``read_one_async``'s statement runs in autocommit, with no BEGIN or COMMIT to wait for.
* Serialization failures, deadlocks, and a busy SQLite are transient: the whole
  use case is run again, a bounded number of times, with jittered back-off.
  Anything else propagates, and the transaction is rolled back.
* A lost or refused database connection (PostgreSQL restarting, a network
  fault) is answered as ``database_unavailable`` (503), not retried here: if
  it broke during COMMIT, the use case may have committed, and only the
  caller's idempotency key can tell. The caller retries with the same key.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import structlog
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool

from purse.errors import DatabaseBusy, DatabaseUnavailable
from purse.prepared import Prepared, driver_savepoints
from purse.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

_WRITE_OPTION = "purse_write"
_PG_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
# Connection exceptions (08), and the server shutting down, crashed or starting up (57P0x).
_PG_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")


class RetryTransaction(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a use case to ask for the whole transaction to run again.

    For example when a concurrent transaction committed the same idempotency key
    first: the next attempt sees it and replays its result.
    """


def sqlalchemy_url(url: str) -> str:
    """Pick our drivers: pysqlite for SQLite, psycopg 3 for PostgreSQL."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(settings: Settings) -> Engine:
    url = sqlalchemy_url(settings.database_url)
    if url.startswith("sqlite"):
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": settings.sqlite_busy_timeout_seconds,
            },
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_timeout=settings.db_wait_seconds,
        )
        _configure_sqlite(engine, settings)
        return engine
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_wait_seconds,
        pool_pre_ping=True,
        connect_args={"application_name": "purse"},
        isolation_level="READ COMMITTED",
    )
    return engine


# How long a read run on the event loop's thread waits for a busy SQLite before it goes
# to a worker thread instead (Database.read_async).
HERE_BUSY_SECONDS = 0.05


def _here_engine(settings: Settings) -> Engine:
    """SQLite connections for reads run on the caller's thread: one per thread, unpooled."""
    engine = create_engine(
        sqlalchemy_url(settings.database_url),
        poolclass=SingletonThreadPool,
        connect_args={"check_same_thread": False, "timeout": HERE_BUSY_SECONDS},
    )
    _configure_sqlite(engine, settings, busy_seconds=HERE_BUSY_SECONDS)
    return engine.execution_options(**{_WRITE_OPTION: False})


def _configure_sqlite(
    engine: Engine, settings: Settings, busy_seconds: float | None = None
) -> None:
    busy_ms = int((busy_seconds or settings.sqlite_busy_timeout_seconds) * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver must not open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit acknowledged to a client is on disk, even after power loss.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_retryable(error: BaseException) -> bool:
    """Whether running the same use case again may succeed."""
    if isinstance(error, RetryTransaction):
        return True
    if isinstance(error, DBAPIError):
        original = error.orig
        sqlstate = getattr(original, "sqlstate", None)
        if sqlstate in _PG_RETRYABLE_SQLSTATES:
            return True
        if isinstance(error, OperationalError) and isinstance(original, sqlite3.OperationalError):
            text = str(original).lower()
            return "database is locked" in text or "database is busy" in text
    return False


def is_unavailable(error: BaseException) -> bool:
    """Whether the database could not be reached (as opposed to refusing the statement)."""
    if not isinstance(error, DBAPIError) or isinstance(error.orig, sqlite3.Error):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is None:
        return isinstance(error, OperationalError)  # psycopg: connection refused, bad, closed
    return str(sqlstate).startswith(_PG_UNAVAILABLE_SQLSTATE_PREFIXES)


@dataclass(eq=False)
class _Job:
    """A write use case waiting for the committer, and then its outcome."""

    use_case: Callable[[Session], Any]
    context: contextvars.Context
    deadline: float
    # Called from the committer's thread once the job has its outcome: an event loop's
    # caller wakes through it (loop.call_soon_threadsafe), a thread's sets its event.
    on_done: Callable[[], object]
    result: Any = None
    error: BaseException | None = None

    def finish(self) -> None:
        self.on_done()


class GroupCommitter:
    """One thread that runs a SQLite database's write use cases, many per transaction.

    A caller hands its use case over and waits. The committer takes every use case
    waiting (up to ``db_group_commit_size_max``), takes the writer's turn, and runs
    them in one transaction: each in a SAVEPOINT and a session of its own, with
    the caller's context variables (its request id in logs). A use case that
    raises is rolled back to its savepoint and gets its error; the rest commit
    together. Only after the COMMIT is anybody answered; if the COMMIT fails,
    everybody gets that error and nothing of the batch is kept.

    A use case that waited longer than ``db_wait_seconds`` for its batch is not
    started: its caller gets ``database_busy`` (503, Retry-After), as before.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._waiting: deque[_Job] = deque()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def run(self, use_case: Callable[[Session], T]) -> T:
        """Run ``use_case`` in the next group commit; its result once that committed."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a use case cannot wait for another write transaction")
        done = threading.Event()
        job = self._submit(use_case, on_done=done.set)
        done.wait()
        result: T = _outcome(job)
        return result

    async def run_async(self, use_case: Callable[[Session], T]) -> T:
        """:meth:`run` for a caller on an event loop: it awaits, and no thread waits for it."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not answered.done():  # the caller may have been cancelled meanwhile
                answered.set_result(None)

        job = self._submit(use_case, on_done=partial(loop.call_soon_threadsafe, wake))
        await answered
        result: T = _outcome(job)
        return result

    def _submit(self, use_case: Callable[[Session], Any], on_done: Callable[[], object]) -> _Job:
        job = _Job(
            use_case,
            contextvars.copy_context(),
            time.monotonic() + self._database.settings.db_wait_seconds,
            on_done=on_done,
        )
        with self._changed:
            self._waiting.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._commit_forever, name="purse-group-commit", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        return job

    def close(self) -> None:
        """Finish what is waiting and stop the thread (the next use case starts another)."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        with self._changed:
            self._closed = False

    def _commit_forever(self) -> None:
        size_max = self._database.settings.db_group_commit_size_max
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                if not self._waiting:
                    self._thread = None  # closed: a later use case starts another
                    return
                batch = [self._waiting.popleft() for _ in range(min(size_max, len(self._waiting)))]
            try:
                self._commit(batch)
            finally:
                for job in batch:
                    job.finish()

    def _commit(self, batch: list[_Job]) -> None:
        now = time.monotonic()
        for job in batch:
            if job.deadline < now:
                job.error = DatabaseBusy()
        batch = [job for job in batch if job.error is None]
        if not batch:
            return
        database = self._database
        # The batch's use cases still wait while the batch waits for the writer's turn.
        if not database._writer_turn(database._sqlite_writers, waiting=len(batch)):
            for job in batch:
                job.error = DatabaseBusy()
            return
        try:
            with database._write_engine.connect() as connection, connection.begin():
                # BEGIN IMMEDIATE; COMMIT when the block ends, ROLLBACK if anything raised.
                for job in batch:
                    _run_in_savepoint(job, connection)
        except BaseException as error:  # BEGIN or COMMIT failed: nothing of the batch is kept
            for job in batch:
                job.result, job.error = None, error
            if not isinstance(error, Exception):
                raise  # the process is stopping; every caller has been told
        finally:
            database._sqlite_writers.release()


def _outcome(job: _Job) -> Any:
    if job.error is not None:
        raise job.error
    return job.result


def _run_in_savepoint(job: _Job, connection: Any) -> None:
    with Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        # SAVEPOINT; RELEASE SAVEPOINT when it returns (the batch's COMMIT makes it
        # durable), ROLLBACK TO SAVEPOINT when it raises: this use case alone.
        try:
            with session.begin():
                job.result = job.context.run(job.use_case, session)
        except Exception as error:
            job.result, job.error = None, error


class Database:
    """The engine of one database and the ways to open transactions on it."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine if engine is not None else create_db_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        driver_savepoints(self.engine.dialect)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        read_options: dict[str, Any] = {_WRITE_OPTION: False}
        if not self.is_sqlite:
            read_options["isolation_level"] = "REPEATABLE READ"
        self._read_engine = self.engine.execution_options(**read_options)
        # PostgreSQL: one statement in autocommit (read_one_async's, execute_alone's).
        self._single_engine = (
            None
            if self.is_sqlite
            else self.engine.execution_options(
                **{_WRITE_OPTION: False}, isolation_level="AUTOCOMMIT"
            )
        )
        # SQLite in a file: each thread's own connection for reads run where they are
        # asked for (see read_async); nothing to wait for in a pool. (An in-memory
        # database is one per connection: its reads go to the pool like any other.)
        self._here_engine = (
            _here_engine(settings)
            if self.is_sqlite and engine is None and settings.sqlite_path() is not None
            else None
        )
        self._here_connections = threading.local()
        self._sqlite_writers = threading.Lock()
        # Transactions waiting for the writer's turn on SQLite: the line in front of the
        # writer, bounded by the requests admitted at once (purse.web.limits) and by
        # db_wait_seconds. /metrics shows it as purse_db_writers_waiting.
        self._writers_waiting = 0
        self._waiting_count = threading.Lock()
        self.committer = (
            GroupCommitter(self) if self.is_sqlite and settings.db_group_commit else None
        )

    @property
    def writers_waiting(self) -> int:
        """Write transactions waiting for their turn (with group commit: for their batch)."""
        queued = self.committer.queued if self.committer is not None else 0
        return self._writers_waiting + queued

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One DB transaction: committed when the block ends, rolled back if it raises."""
        bind = self._write_engine if write else self._read_engine
        queue = self._sqlite_writers if write and self.is_sqlite else None
        if queue is not None and not self._writer_turn(queue):
            raise DatabaseBusy()
        try:
            with Session(bind=bind, expire_on_commit=False) as session, session.begin():
                yield session
        except PoolTimeout as error:
            raise DatabaseBusy() from error  # every pooled connection stayed in use
        finally:
            if queue is not None:
                queue.release()

    def _writer_turn(self, queue: threading.Lock, *, waiting: int = 1) -> bool:
        with self._waiting_count:
            self._writers_waiting += waiting
        try:
            return queue.acquire(timeout=self.settings.db_wait_seconds)
        finally:
            with self._waiting_count:
                self._writers_waiting -= waiting

    def run(self, use_case: Callable[[Session], T], *, write: bool = True) -> T:
        """Run ``use_case`` in one transaction, again on transient conflicts (bounded)."""
        for attempt in range(1, self.settings.db_retry_count_max + 2):
            try:
                if write and self.committer is not None:
                    return self.committer.run(use_case)
                with self.transaction(write=write) as session:
                    return use_case(session)
            except Exception as error:
                time.sleep(self._retry_delay(error, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def run_async(self, use_case: Callable[[Session], T], *, write: bool = True) -> T:
        """:meth:`run` for a caller on an event loop.

        A write on SQLite is handed to the committer and awaited: no worker thread sits
        waiting for the batch. Anything else runs on a worker thread, as a plain
        ``def`` route would.
        """
        if not (write and self.committer is not None):
            return await anyio.to_thread.run_sync(partial(self.run, use_case, write=write))
        for attempt in range(1, self.settings.db_retry_count_max + 2):
            try:
                return await self.committer.run_async(use_case)
            except Exception as error:
                await asyncio.sleep(self._retry_delay(error, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def read_async(self, use_case: Callable[[Session], T]) -> T:
        """A short read for a caller on an event loop (authentication, for one).

        On SQLite it runs right here, on the loop's thread, with a connection of that
        thread's own: a read in WAL mode does not wait for the writer, and handing a
        read of a fraction of a millisecond to a worker thread and back costs more
        than the read. In SQLite's rare busy moments (a WAL reset) it waits at most
        ``HERE_BUSY_SECONDS`` and then goes to a worker thread, as every read does on
        PostgreSQL, whose reads go over the network.
        """
        if self._here_engine is not None:
            try:
                with (
                    Session(bind=self._here_engine, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    return use_case(session)
            except OperationalError as error:
                if not is_retryable(error):
                    raise
                log.debug("db.read_here_busy")
        return await anyio.to_thread.run_sync(partial(self.run, use_case, write=False))

    async def read_one_async(self, statement: Prepared, values: Mapping[str, Any]) -> Any:
        """The first row of one SELECT (or None), for a caller on an event loop.

        A single statement reads one consistent snapshot by itself, so this opens no
        transaction around it: no session, no BEGIN, no COMMIT (authentication runs it
        on every request). Where it runs is as for :meth:`read_async`.
        """
        if self._here_engine is not None:
            connection: Connection | None = None
            try:
                connection = self._here_connection()
                return statement.first(connection, values)
            except OperationalError as error:
                if not is_retryable(error):
                    raise
                log.debug("db.read_here_busy")
            except (DBAPIError, sqlite3.ProgrammingError) as error:
                # The pool closed the thread's connection under it (SingletonThreadPool
                # closes the oldest threads' beyond its size): drop it, read on a worker.
                original = error.orig if isinstance(error, DBAPIError) else error
                if not isinstance(original, sqlite3.ProgrammingError):
                    raise
                self._here_connections.connection = None
                log.debug("db.read_here_closed")
            finally:
                if connection is not None and connection.in_transaction():
                    connection.rollback()  # SQLAlchemy ran it (statement events) and began
        if self.is_sqlite:  # busy: as any read, on a worker thread, retried
            return await anyio.to_thread.run_sync(
                partial(self.run, partial(statement.first, values=values), write=False)
            )
        return await anyio.to_thread.run_sync(self._read_one_alone, statement, values)

    def execute_alone(self, statement: Prepared, values: Mapping[str, Any]) -> int:
        """One statement that changes rows and needs nothing around it; its row count.

        On PostgreSQL it runs in autocommit: the statement is its own transaction, and
        the BEGIN and COMMIT round trips of one are saved (the relay marks each message
        this way). On SQLite it is a write like any other, in the next group commit.
        """
        if self.is_sqlite:
            return self.run(lambda session: statement.execute(session, values))
        count: int = self._alone(partial(statement.execute, values=values))
        return count

    def _read_one_alone(self, statement: Prepared, values: Mapping[str, Any]) -> Any:
        """One statement in autocommit on PostgreSQL: no BEGIN and no COMMIT around it,
        two round trips of the four a transaction took for authentication's read."""
        return self._alone(partial(statement.first, values=values))

    def _alone(self, run: Callable[[Connection], T]) -> T:
        assert self._single_engine is not None
        try:
            with self._single_engine.connect() as connection:
                return run(connection)
        except PoolTimeout as error:
            raise DatabaseBusy() from error
        except DBAPIError as error:
            if is_unavailable(error):
                log.warning("db.unavailable", error=type(error.__cause__ or error).__name__)
                raise DatabaseUnavailable() from error
            raise

    def _here_connection(self) -> Connection:
        """This thread's connection for single reads, kept open between them.

        Opening and closing SQLAlchemy's wrapper around the thread's one SQLite
        connection cost more than authentication's read itself. It holds no
        transaction between reads; one that was lost is replaced.
        """
        assert self._here_engine is not None
        connection: Connection | None = getattr(self._here_connections, "connection", None)
        if connection is None or connection.invalidated or connection.closed:
            connection = self._here_engine.connect()
            self._here_connections.connection = connection
        return connection

    def _retry_delay(self, error: Exception, attempt: int) -> float:
        """How long to wait before running a failed use case again; raises if it must not be."""
        if is_unavailable(error):
            log.warning("db.unavailable", error=type(error.__cause__ or error).__name__)
            raise DatabaseUnavailable() from error
        if not is_retryable(error):
            raise error
        if attempt > self.settings.db_retry_count_max:
            log.warning("db.retries_exhausted", attempts=attempt, error=type(error).__name__)
            raise DatabaseBusy() from error
        delay: float = min(0.2, 0.002 * 2**attempt) * (0.5 + random.random())  # noqa: S311
        log.debug("db.retry", attempt=attempt, error=type(error).__name__, delay=delay)
        return delay

    def dispose(self) -> None:
        if self.committer is not None:
            self.committer.close()
        if self._here_engine is not None:
            self._here_connections = threading.local()  # each thread's is closed below
            self._here_engine.dispose()
        self.engine.dispose()


def sqlite_file(database: Database) -> Path | None:
    return database.settings.sqlite_path() if database.is_sqlite else None
