"""Plain functions that make test data through the real services."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from purse.assembly import assemble
from purse.db import Database
from purse.errors import PurseError
from purse.ledger import checkpoints
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.rules import Initiator, TransferKind, TransferRequest
from purse.ledger.sealer import seal_everything
from purse.ledger.verify import VerifyReport
from purse.models import utc_now
from purse.settings import Settings

TEST_SECRET = "test-secret-key-" + "x" * 32


# Real argon2id, with parameters cheap enough for a test suite that hashes hundreds of times.
FAST_HASHING = {"password_hash_time_cost": 1, "password_hash_memory_cost_kib": 8192}


def make_settings(database_url: str, **overrides: object) -> Settings:
    values = {"env": "test", **FAST_HASHING, **overrides}
    return Settings(database_url=database_url, secret_key=TEST_SECRET, **values)  # type: ignore[arg-type]


SYSTEM = Initiator(kind="system", id="tests", authenticated_by="system")
USER = Initiator(kind="user_session", id="session-1", authenticated_by="password")


def open_wallet(
    session: Session, *, asset: str = "CNY", owner_id: str = "1"
) -> ledger_queries.AccountRecord:
    return ledger.open_account(
        session,
        asset=asset,
        owner_kind="user",
        owner_id=owner_id,
        kind="wallet",
        debits_must_not_exceed_credits=True,
    )


def open_system(
    session: Session, *, asset: str = "CNY", kind: str = "funding"
) -> ledger_queries.AccountRecord:
    return ledger.open_account(
        session,
        asset=asset,
        owner_kind="system",
        owner_id=None,
        kind=kind,
        debits_must_not_exceed_credits=False,
    )


def fund(
    session: Session,
    *,
    source_id: int,
    wallet_id: int,
    amount_minor: int,
    asset: str = "CNY",
    now: datetime | None = None,
) -> ledger_queries.TransferRecord:
    return ledger.submit_transfer(
        session,
        TransferRequest(
            kind=TransferKind.posted,
            debit_account_id=source_id,
            credit_account_id=wallet_id,
            asset=asset,
            amount_minor=amount_minor,
            reason_code="top_up",
        ),
        initiator=SYSTEM,
        now=now,
    )


def wallets(
    database: Database, *, count: int, balance_minor: int, asset: str = "CNY"
) -> tuple[int, list[int]]:
    """A funding account and ``count`` wallets holding ``balance_minor`` each."""

    def make(session: Session) -> tuple[int, list[int]]:
        source = open_system(session, asset=asset)
        ids = []
        for index in range(count):
            wallet = open_wallet(session, asset=asset, owner_id=str(index))
            if balance_minor:
                fund(
                    session,
                    source_id=source.id,
                    wallet_id=wallet.id,
                    amount_minor=balance_minor,
                    asset=asset,
                )
            ids.append(wallet.id)
        return source.id, ids

    return database.run(make)


def balance(database: Database, account_id: int) -> ledger_queries.AccountRecord:
    return database.run(lambda s: ledger_queries.get_account(s, account_id=account_id), write=False)


def close_months(
    database: Database,
    *,
    timezone: str,
    now: datetime | None = None,
    grace_seconds: int = 0,
    accounts_max: int = 500,
) -> int:
    """Run the ledger's month job until every month over by ``now`` (less the grace) is
    closed; how many month balances it wrote."""
    now = now or utc_now()
    written = 0
    for _ in range(100):
        due = database.run(lambda s: checkpoints.month_to_close(s, timezone=timezone), write=False)
        if due is None or not (
            due.started or due.month_start <= now - timedelta(seconds=grace_seconds)
        ):
            return written
        written += database.run(
            lambda s: checkpoints.write_month_balances(
                s,
                timezone=timezone,
                grace_seconds=grace_seconds,
                accounts_max=accounts_max,
                now=now,
            )
        )
    raise AssertionError("the month job did not finish")


def seal_and_check(database: Database) -> VerifyReport:
    """Seal every transfer into the chain, as the ledger's job would, then :func:`full_check`.

    On PostgreSQL the sealer chains transfers after they commit, and tests run no jobs;
    sealing first lets the check walk every transfer's link."""
    seal_everything(database)
    return database.run(lambda session: full_check(database, session), write=False)


def full_check(database: Database, session: Session) -> VerifyReport:
    """What ``purse ledger verify`` checks (the ledger, and every domain's part of it),
    without the grace for holds the expiry job has not reached: tests run no jobs."""
    settings = database.settings.model_copy(update={"hold_expiry_grace_seconds": 10**9})
    return assemble(settings, database=database).verify(session)


def race(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` for i in range(count) on as many threads, released together."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait(timeout=30)
        try:
            return action(index)
        except PurseError as error:
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
