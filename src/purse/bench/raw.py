"""The floor: bare SQL doing the same balance checks, updates and inserts as the ledger service."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psycopg

from purse.bench.databases import SQLITE_BUSY_TIMEOUT_SECONDS
from purse.bench.workload import ASSET, IDEMPOTENCY_SCOPE, INITIATOR, REASON_CODE, Target, Transfer

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


def raw_sums_ok(target: Target, done: int, setup_transfers: int) -> bool:
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
