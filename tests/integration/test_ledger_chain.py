"""The hash chain's sealer (purse.ledger.sealer): on PostgreSQL payments do not wait for
each other on the chain head, what committed is chained in the order it was sealed,
and verify still proves the chain; on SQLite a batch seals its own transfers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from factories import USER, make_settings, race, wallets
from purse.db import Database
from purse.ledger import checkpoints, errors
from purse.ledger import service as ledger
from purse.ledger.models import Transfer
from purse.ledger.rules import TransferKind, TransferRequest
from purse.ledger.sealer import seal_transfers
from purse.ledger.verify import verify_ledger

WAIT_SECONDS = 20  # for what must happen; what must not is given a moment only


def pay(
    debit: int, credit: int, amount_minor: int = 1, *, now: datetime | None = None
) -> Callable[[Session], int]:
    request = TransferRequest(
        kind=TransferKind.posted,
        debit_account_id=debit,
        credit_account_id=credit,
        asset="CNY",
        amount_minor=amount_minor,
        reason_code="p2p",
    )
    return lambda session: ledger.submit_transfer(session, request, initiator=USER, now=now).id


def chain(database: Database) -> list[tuple[int, int | None]]:
    """(id, chain_seq) of every transfer, in chain order (the unsealed last, by id)."""
    t = Transfer.__table__
    rows = database.run(
        lambda s: s.execute(select(t.c.id, t.c.chain_seq)).all(),
        write=False,
    )
    return sorted(
        ((row.id, row.chain_seq) for row in rows),
        key=lambda pair: (pair[1] is None, pair[1] or 0, pair[0]),
    )


def problems(database: Database, **more: object) -> list[str]:
    report = database.run(lambda s: verify_ledger(s, **more), write=False)  # type: ignore[arg-type]
    return sorted({problem.check for problem in report.problems})


def postgres_only(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time, which seals as it writes")


class OpenTransaction:
    """A use case run on a thread of its own, its transaction held open until released."""

    def __init__(self, database: Database, use_case: Callable[[Session], object]) -> None:
        self.done = threading.Event()
        self.release = threading.Event()
        self.result: list[object] = []

        def run() -> None:
            try:
                with database.transaction() as session:
                    self.result.append(use_case(session))
                    self.done.set()
                    assert self.release.wait(WAIT_SECONDS)
            except Exception as error:  # noqa: BLE001 - handed to the test
                self.result.append(error)
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.done.wait(WAIT_SECONDS)

    def commit(self) -> object:
        self.release.set()
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive()
        return self.result[-1]


def in_thread(action: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_sqlite_seals_each_transfer_as_it_is_written(database: Database) -> None:
    if not database.is_sqlite:
        pytest.skip("PostgreSQL seals after the commit")
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    paid = database.run(pay(alice, bob))
    assert chain(database)[-1] == (paid, paid)
    assert database.run(seal_transfers) == 0
    report = database.run(verify_ledger, write=False)
    assert report.ok and report.transfers_unsealed == 0


def test_a_payment_does_not_wait_for_another_open_one_and_the_chain_follows_the_sealing(
    database: Database,
) -> None:
    postgres_only(database)
    _, (alice, bob, carol, dave) = wallets(database, count=4, balance_minor=100)
    database.run(seal_transfers)
    first = OpenTransaction(database, pay(alice, bob))  # has written, not committed
    thread, outcome = in_thread(lambda: database.run(pay(carol, dave)))
    thread.join(WAIT_SECONDS)
    # With the chain head locked by every transfer until its commit, this waited for the first.
    assert not thread.is_alive(), "the second payment waited for the first one's commit"
    [second] = outcome
    assert database.run(seal_transfers) == 1  # the committed one only
    first_id = first.commit()
    assert isinstance(first_id, int) and isinstance(second, int) and first_id < second
    assert database.run(seal_transfers) == 1
    order = chain(database)
    assert [transfer_id for transfer_id, _ in order[-2:]] == [second, first_id]
    assert order[-1][1] == order[-2][1] + 1  # type: ignore[operator]
    assert problems(database) == []


def test_two_sealers_at_once_chain_each_transfer_once(database: Database) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    for _ in range(20):
        database.run(pay(alice, bob))
    unsealed = sum(1 for _, seq in chain(database) if seq is None)
    sealed = race(2, lambda _: database.run(seal_transfers))
    assert sum(sealed) == unsealed
    seqs = [seq for _, seq in chain(database)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert problems(database) == []


def test_verify_counts_the_transfers_waiting_to_be_sealed(database: Database) -> None:
    postgres_only(database)
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    database.run(seal_transfers)
    database.run(pay(alice, bob))
    report = database.run(verify_ledger, write=False)
    assert report.ok and report.transfers_unsealed == 1
    assert database.run(seal_transfers) == 1
    report = database.run(verify_ledger, write=False)
    assert report.ok and report.transfers_unsealed == 0


def test_removing_or_reordering_sealed_transfers_breaks_the_chain(database_url: str) -> None:
    database = Database(make_settings(database_url))  # left broken: no check after the test
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    paid = [database.run(pay(alice, bob)) for _ in range(3)]
    database.run(seal_transfers)
    seq = {transfer_id: place for transfer_id, place in chain(database) if place is not None}

    def place(places: dict[int, int]) -> None:
        def run(session: Session) -> None:
            for transfer_id, place in places.items():  # out of the way of the unique index
                session.execute(
                    text("UPDATE ledger_transfers SET chain_seq = :p WHERE id = :id"),
                    {"id": transfer_id, "p": -place},
                )
            session.execute(
                text("UPDATE ledger_transfers SET chain_seq = -chain_seq WHERE chain_seq < 0")
            )

        database.run(run)

    # Swap two links' places: each hash covers the one before, so they stop matching.
    a, b = paid[0], paid[1]
    place({a: seq[b], b: seq[a]})
    assert problems(database) == ["hash_chain"]
    place({a: seq[a], b: seq[b]})
    assert problems(database) == []
    # Remove one, and what it did to the balances: only the chain can tell.
    database.run(
        lambda s: s.execute(text("DELETE FROM ledger_transfers WHERE id = :id"), {"id": paid[1]})
    )

    def undo_balances(session: Session) -> None:
        for column, account in (("debits_posted", alice), ("credits_posted", bob)):
            session.execute(
                text(f"UPDATE ledger_accounts SET {column} = {column} - 1 WHERE id = :id"),
                {"id": account},
            )

    database.run(undo_balances)
    assert problems(database) == ["hash_chain"]
    database.dispose()


APRIL = datetime(2026, 4, 10, 4, tzinfo=UTC)
MAY_10 = datetime(2026, 5, 10, 4, tzinfo=UTC)
TIMEZONE = "Asia/Shanghai"


def close_month(session: Session) -> int:
    return checkpoints.write_month_balances(
        session,
        timezone=TIMEZONE,
        grace_seconds=300,
        accounts_max=500,
        now=MAY_10,
    )


def test_the_month_job_waits_for_a_payment_in_flight_and_sums_it(database: Database) -> None:
    postgres_only(database)
    # Carol and Dave have not moved in April: no row lock of theirs is in the month job's way.
    _, (alice, bob, carol, dave) = wallets(database, count=4, balance_minor=100)
    database.run(pay(alice, bob, 5, now=APRIL - timedelta(days=1)))  # the first month is April's
    payment = OpenTransaction(database, pay(carol, dave, 7, now=APRIL))
    thread, outcome = in_thread(lambda: database.run(close_month))
    thread.join(1.0)
    assert thread.is_alive(), "the month closed under a payment dated in it"
    assert isinstance(payment.commit(), int)
    thread.join(WAIT_SECONDS)
    assert outcome and isinstance(outcome[0], int) and outcome[0] > 0
    balances = database.run(
        lambda s: s.execute(
            text("SELECT credits_posted FROM ledger_month_balances WHERE account_id = :d"),
            {"d": dave},
        ).scalar_one(),
        write=False,
    )
    assert balances == 7
    database.run(seal_transfers)
    assert problems(database) == []


def test_a_payment_waits_for_the_month_job_and_is_then_refused(database: Database) -> None:
    postgres_only(database)
    _, (alice, bob, carol, dave) = wallets(database, count=4, balance_minor=100)
    database.run(pay(alice, bob, 5, now=APRIL - timedelta(days=1)))
    month = OpenTransaction(database, close_month)
    thread, outcome = in_thread(lambda: database.run(pay(carol, dave, 7, now=APRIL)))
    thread.join(1.0)
    assert thread.is_alive(), "a payment dated in the month went past the month job's lock"
    assert month.commit() == 2
    thread.join(WAIT_SECONDS)
    assert outcome and isinstance(outcome[0], errors.TransferDatedInClosedMonth)
    database.run(seal_transfers)
    assert problems(database) == []
