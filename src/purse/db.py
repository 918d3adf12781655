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
* Serialization failures, deadlocks, and a busy SQLite are transient: the whole
  use case is run again, a bounded number of times, with jittered back-off.
  Anything else propagates, and the transaction is rolled back.
* A lost or refused database connection (PostgreSQL restarting, a network
  fault) is answered as ``database_unavailable`` (503), not retried here: if
  it broke during COMMIT, the use case may have committed, and only the
  caller's idempotency key can tell. The caller retries with the same key.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from purse.errors import DatabaseBusy, DatabaseUnavailable
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


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    busy_ms = int(settings.sqlite_busy_timeout_seconds * 1000)

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


class Database:
    """The engine of one database and the ways to open transactions on it."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine if engine is not None else create_db_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        read_options: dict[str, Any] = {_WRITE_OPTION: False}
        if not self.is_sqlite:
            read_options["isolation_level"] = "REPEATABLE READ"
        self._read_engine = self.engine.execution_options(**read_options)
        self._sqlite_writers = threading.Lock()
        # Transactions waiting for the writer's turn on SQLite: the line in front of the
        # writer, bounded by the requests admitted at once (purse.web.limits) and by
        # db_wait_seconds. /metrics shows it as purse_db_writers_waiting.
        self.writers_waiting = 0
        self._waiting_count = threading.Lock()

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

    def _writer_turn(self, queue: threading.Lock) -> bool:
        with self._waiting_count:
            self.writers_waiting += 1
        try:
            return queue.acquire(timeout=self.settings.db_wait_seconds)
        finally:
            with self._waiting_count:
                self.writers_waiting -= 1

    def run(self, use_case: Callable[[Session], T], *, write: bool = True) -> T:
        """Run ``use_case`` in one transaction, again on transient conflicts (bounded)."""
        attempts_max = self.settings.db_retry_count_max + 1
        for attempt in range(1, attempts_max + 1):
            try:
                with self.transaction(write=write) as session:
                    return use_case(session)
            except Exception as error:
                if is_unavailable(error):
                    log.warning("db.unavailable", error=type(error.__cause__ or error).__name__)
                    raise DatabaseUnavailable() from error
                if not is_retryable(error):
                    raise
                if attempt == attempts_max:
                    log.warning(
                        "db.retries_exhausted", attempts=attempt, error=type(error).__name__
                    )
                    raise DatabaseBusy() from error
                delay = min(0.2, 0.002 * 2**attempt) * (0.5 + random.random())  # noqa: S311
                log.debug("db.retry", attempt=attempt, error=type(error).__name__, delay=delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        self.engine.dispose()


def sqlite_file(database: Database) -> Path | None:
    return database.settings.sqlite_path() if database.is_sqlite else None
