"""Threads racing on the ledger, on SQLite and PostgreSQL.

These prove what isolation-level names only promise: totals are conserved, no
wallet goes below zero, a key is applied once, a hold is resolved once, and no
deadlock or "database is locked" reaches the caller.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import USER, balance, race, wallets
from purse.db import Database
from purse.ledger import errors
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.models import IdempotencyKey, Transfer
from purse.ledger.rules import TransferKind, TransferRequest

WORKERS = 8


def test_random_transfers_conserve_money_and_apply_each_key_once(database: Database) -> None:
    accounts_count, per_worker, balance_minor = 20, 500, 1_000
    source, ids = wallets(database, count=accounts_count, balance_minor=balance_minor)
    outcomes: Counter[str] = Counter()
    applied: dict[str, int] = {}
    lock = threading.Lock()

    def work(worker: int) -> None:
        rng = random.Random(worker)
        sent: list[tuple[str, int, int, int]] = []
        for step in range(per_worker):
            if sent and rng.random() < 0.1:
                key, debit, credit, amount = rng.choice(sent)  # a client retrying
            else:
                debit, credit = rng.sample(ids, 2)
                key, amount = f"w{worker}-{step}", rng.randint(1, 150)
            try:
                record = database.run(
                    partial(
                        ledger.submit_transfer,
                        request=TransferRequest(
                            kind=TransferKind.posted,
                            debit_account_id=debit,
                            credit_account_id=credit,
                            asset="CNY",
                            amount_minor=amount,
                            reason_code="p2p",
                        ),
                        initiator=USER,
                        idempotency_scope="bank",
                        idempotency_key=key,
                    )
                )
            except errors.InsufficientFunds:
                with lock:
                    outcomes["insufficient_funds"] += 1
                continue
            with lock:
                if key in applied:
                    assert applied[key] == record.id, "a retried key moved money again"
                    outcomes["replayed"] += 1
                else:
                    applied[key] = record.id
                    outcomes["applied"] += 1
            sent.append((key, debit, credit, amount))

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(work, w) for w in range(WORKERS)]:
            future.result()  # re-raises anything unexpected, e.g. DatabaseBusy

    assert outcomes["applied"] > 1_000 and outcomes["replayed"] > 100
    wallet_total = sum(balance(database, i).balance_minor for i in ids)
    assert wallet_total == accounts_count * balance_minor
    assert all(balance(database, i).available_minor >= 0 for i in ids)
    with database.transaction(write=False) as session:
        keys = session.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one()
        bank = session.execute(
            select(func.count()).select_from(Transfer).where(Transfer.reason_code == "p2p")
        ).scalar_one()
    assert keys == bank == len(applied)


def test_overdraft_race_lets_exactly_ten_of_fifty_through(database: Database) -> None:
    _, (wallet, shop) = wallets(database, count=2, balance_minor=100)
    results = race(
        50,
        lambda i: database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=wallet,
                    credit_account_id=shop,
                    asset="CNY",
                    amount_minor=10,
                    reason_code="pay",
                ),
                initiator=USER,
            )
        ),
    )
    assert sum(isinstance(r, ledger_queries.TransferRecord) for r in results) == 10
    assert sum(isinstance(r, errors.InsufficientFunds) for r in results) == 40
    assert balance(database, wallet).balance_minor == 0
    assert balance(database, shop).balance_minor == 200


def test_same_key_raced_sixteen_times_moves_money_once(database: Database) -> None:
    _, (wallet, shop) = wallets(database, count=2, balance_minor=1_000)
    results = race(
        16,
        lambda i: database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=wallet,
                    credit_account_id=shop,
                    asset="CNY",
                    amount_minor=7,
                    reason_code="pay",
                ),
                initiator=USER,
                idempotency_scope="user:1",
                idempotency_key="once",
            )
        ),
    )
    assert all(isinstance(r, ledger_queries.TransferRecord) for r in results), results
    assert len({r.id for r in results}) == 1
    assert balance(database, wallet).balance_minor == 993


def test_hold_raced_by_post_void_and_expiry_resolves_once(database: Database) -> None:
    """Each racer runs at a time when it is allowed to win; exactly one may."""
    from datetime import UTC, datetime, timedelta

    rounds = 20
    created = datetime(2026, 1, 1, tzinfo=UTC)
    before_expiry, at_expiry = created + timedelta(seconds=9), created + timedelta(seconds=10)
    _, (wallet, shop) = wallets(database, count=2, balance_minor=100 * rounds)
    for _ in range(rounds):
        held = database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.pending,
                    debit_account_id=wallet,
                    credit_account_id=shop,
                    asset="CNY",
                    amount_minor=100,
                    timeout_seconds=10,
                    reason_code="pay",
                ),
                initiator=USER,
                now=created,
            )
        )

        def resolve(request: TransferRequest) -> Callable[[], Any]:
            return partial(
                database.run,
                partial(ledger.submit_transfer, request=request, initiator=USER, now=before_expiry),
            )

        actions: list[Callable[[], Any]] = [
            resolve(
                TransferRequest(
                    kind=TransferKind.post_pending,
                    pending_id=held.id,
                    amount_minor=150,
                    reason_code="capture",
                )
            ),
            resolve(
                TransferRequest(
                    kind=TransferKind.post_pending, pending_id=held.id, reason_code="capture"
                )
            ),
            resolve(
                TransferRequest(
                    kind=TransferKind.void_pending, pending_id=held.id, reason_code="cancel"
                )
            ),
            partial(database.run, partial(ledger.expire_overdue_holds, now=at_expiry)),
        ]
        results = race(len(actions), partial(_run_one_of, actions))
        # A capture above the hold never succeeds, whoever else wins.
        assert isinstance(
            results[0],
            errors.ExceedsPendingAmount
            | errors.PendingTransferAlreadyPosted
            | errors.PendingTransferAlreadyVoided
            | errors.PendingTransferAlreadyExpired,
        )
        wins = sum(isinstance(r, ledger_queries.TransferRecord) for r in results[1:3]) + (
            results[3] == 1
        )
        assert wins == 1, results
    with database.transaction(write=False) as session:
        resolutions = session.execute(
            select(func.count()).select_from(Transfer).where(Transfer.pending_id.is_not(None))
        ).scalar_one()
    assert resolutions == rounds
    assert balance(database, wallet).debits_pending == 0


def test_expiry_job_in_four_workers_at_once_expires_each_hold_once(database: Database) -> None:
    """Several workers may run the expiry job at once (SKIP LOCKED on PostgreSQL)."""
    from datetime import UTC, datetime, timedelta

    holds, created = 200, datetime(2026, 1, 1, tzinfo=UTC)
    _, (wallet, shop) = wallets(database, count=2, balance_minor=holds)

    def make_holds(session: Session) -> None:
        for _ in range(holds):
            ledger.submit_transfer(
                session,
                TransferRequest(
                    kind=TransferKind.pending,
                    debit_account_id=wallet,
                    credit_account_id=shop,
                    asset="CNY",
                    amount_minor=1,
                    timeout_seconds=5,
                    reason_code="pay",
                ),
                initiator=USER,
                now=created,
            )

    database.run(make_holds)
    later = created + timedelta(seconds=5)
    counts = race(
        4,
        lambda i: sum(
            iter(
                lambda: database.run(lambda s: ledger.expire_overdue_holds(s, now=later, limit=25)),
                0,
            )
        ),
    )
    assert sum(counts) == holds, counts
    assert balance(database, wallet).available_minor == holds


def _run_one_of(actions: list[Callable[[], Any]], index: int) -> Any:
    return actions[index]()
