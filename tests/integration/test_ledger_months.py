"""Month balances on SQLite and PostgreSQL: the month job, the closed-month guard, verify.

Months are local months in Asia/Shanghai (UTC+8): a month starts at 16:00 UTC on
the last day of the month before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import factories
from factories import SYSTEM, USER, balance, fund, open_system, open_wallet
from purse.db import Database
from purse.ledger import checkpoints, errors
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.jobs import MonthBalances
from purse.ledger.models import ChainHead, MonthBalance, Transfer
from purse.ledger.rules import GroupRequest, TransferKind, TransferRequest, month_start_after
from purse.ledger.verify import verify_ledger

TIMEZONE = "Asia/Shanghai"
GRACE_SECONDS = 300


def local(year: int, month: int, day: int, hour: int = 12) -> datetime:
    """A moment of a Shanghai day, in UTC."""
    return datetime(year, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


FEB, MAR, APR, MAY = (local(2026, number, 1, 0) for number in (2, 3, 4, 5))
AFTER_APRIL = local(2026, 5, 10)  # January to April are closed then


def posted(debit: int, credit: int, amount_minor: int, **more: object) -> TransferRequest:
    return TransferRequest(
        kind=TransferKind.posted,
        debit_account_id=debit,
        credit_account_id=credit,
        asset="CNY",
        amount_minor=amount_minor,
        reason_code="test",
        **more,  # type: ignore[arg-type]
    )


def move(database: Database, request: TransferRequest, *, now: datetime, **more: object) -> int:
    return database.run(
        lambda s: ledger.submit_transfer(s, request, initiator=USER, now=now, **more)  # type: ignore[arg-type]
    ).id


def history(database: Database) -> tuple[int, int, int]:
    """A funding account, Alice (moves in January, February and April: a hold posted in
    part, a reversal, a hold voided) and Bob (January and April only)."""

    def accounts(session: Session) -> tuple[int, int, int]:
        return (
            open_system(session).id,
            open_wallet(session, owner_id="alice").id,
            open_wallet(session, owner_id="bob").id,
        )

    source, alice, bob = database.run(accounts)
    database.run(
        lambda s: fund(
            s, source_id=source, wallet_id=alice, amount_minor=10_000, now=local(2026, 1, 5)
        )
    )
    database.run(
        lambda s: fund(
            s, source_id=source, wallet_id=bob, amount_minor=3_000, now=local(2026, 1, 31, 23)
        )
    )
    hold = move(
        database,
        TransferRequest(
            kind=TransferKind.pending,
            debit_account_id=alice,
            credit_account_id=bob,
            asset="CNY",
            amount_minor=2_000,
            reason_code="test",
            timeout_seconds=7200,
        ),
        now=local(2026, 2, 3),
    )
    move(
        database,
        TransferRequest(
            kind=TransferKind.post_pending, pending_id=hold, amount_minor=1_500, reason_code="test"
        ),
        now=local(2026, 2, 3, 13),
    )
    paid = move(database, posted(alice, bob, 700), now=local(2026, 2, 28, 23))
    reversal = TransferRequest(reversal_of=paid, amount_minor=300, reason_code="test")
    move(database, reversal, now=local(2026, 4, 2))  # Bob pays 300 back
    voided = move(
        database,
        TransferRequest(
            kind=TransferKind.pending,
            debit_account_id=alice,
            credit_account_id=bob,
            asset="CNY",
            amount_minor=900,
            reason_code="test",
            timeout_seconds=7200,
        ),
        now=local(2026, 4, 3),
    )
    move(
        database,
        TransferRequest(kind=TransferKind.void_pending, pending_id=voided, reason_code="test"),
        now=local(2026, 4, 3, 13),
    )
    return source, alice, bob


def close_months(database: Database, *, now: datetime, accounts_max: int = 500) -> int:
    return factories.close_months(
        database, timezone=TIMEZONE, now=now, grace_seconds=GRACE_SECONDS, accounts_max=accounts_max
    )


def month_rows(database: Database) -> dict[tuple[int, datetime], tuple[int, int]]:
    rows = database.run(lambda s: s.execute(select(MonthBalance)).scalars().all(), write=False)
    return {(r.account_id, r.month_start): (r.debits_posted, r.credits_posted) for r in rows}


def posted_before(database: Database, account_id: int, instant: datetime) -> tuple[int, int]:
    """(posted debits, posted credits) of the account dated before ``instant``, summed plainly."""

    def read(s: Session) -> tuple[int, int]:
        sums = []
        for side in (Transfer.debit_account_id, Transfer.credit_account_id):
            sums.append(
                int(
                    s.scalars(
                        select(func.coalesce(func.sum(Transfer.amount_minor), 0)).where(
                            side == account_id,
                            Transfer.created_at < instant,
                            Transfer.kind.in_(("posted", "post_pending")),
                        )
                    ).one()
                )
            )
        return sums[0], sums[1]

    return database.run(read, write=False)


def test_month_starts_are_local_midnights_on_the_first() -> None:
    assert month_start_after(local(2026, 1, 5), TIMEZONE) == FEB
    assert month_start_after(FEB, TIMEZONE) == MAR  # strictly after
    assert month_start_after(FEB - timedelta(microseconds=1), TIMEZONE) == FEB
    assert month_start_after(local(2026, 12, 31, 23), TIMEZONE) == local(2027, 1, 1, 0)
    assert FEB == datetime(2026, 1, 31, 16, tzinfo=UTC)


@pytest.mark.parametrize("accounts_max", [1, 2, 500])
def test_the_month_job_writes_each_closed_month_once_and_the_rows_match_the_transfers(
    database: Database, accounts_max: int
) -> None:
    source, alice, bob = history(database)
    assert close_months(database, now=AFTER_APRIL, accounts_max=accounts_max) > 0
    rows = month_rows(database)
    # Only accounts that moved in a month get a row at its end; the first month adds
    # up everything before it.
    assert sorted(rows) == sorted(
        [(account, FEB) for account in (source, alice, bob)]
        + [(alice, MAR), (bob, MAR)]
        + [(account, MAY) for account in (alice, bob)]
    )
    for (account_id, month_start), stored in rows.items():
        assert stored == posted_before(database, account_id, month_start)
    assert rows[(alice, MAR)] == (2_200, 10_000)  # 1,500 of the hold and 700; none voided
    assert rows[(bob, MAY)] == (300, 3_000 + 2_200)

    chain = database.run(lambda s: s.get_one(ChainHead, 1), write=False)
    assert (chain.checkpoint_at, chain.checkpoint_from, chain.checkpoint_account_id) == (
        MAY,
        APR,
        None,
    )
    # Idempotent: nothing is due, and running the writer anyway writes nothing.
    assert close_months(database, now=AFTER_APRIL, accounts_max=accounts_max) == 0
    again = database.run(
        lambda s: checkpoints.write_month_balances(
            s, timezone=TIMEZONE, grace_seconds=GRACE_SECONDS, accounts_max=1, now=AFTER_APRIL
        )
    )
    assert again == 0 and month_rows(database) == rows


def test_a_month_waits_for_its_grace_period(database: Database) -> None:
    source, alice, bob = history(database)
    just_over = FEB + timedelta(seconds=GRACE_SECONDS - 1)
    assert close_months(database, now=just_over) == 0
    assert month_rows(database) == {}
    assert close_months(database, now=FEB + timedelta(seconds=GRACE_SECONDS)) == 3
    assert set(month_rows(database)) == {(a, FEB) for a in (source, alice, bob)}


def test_transfers_dated_into_a_closed_month_are_refused_and_change_nothing(
    database: Database,
) -> None:
    source, alice, bob = history(database)
    keyed = database.run(
        lambda s: ledger.submit_transfer(
            s,
            posted(source, alice, 50),
            initiator=SYSTEM,
            idempotency_scope="tests",
            idempotency_key="april-top-up",
            now=local(2026, 4, 20),
        )
    )
    close_months(database, now=AFTER_APRIL)
    before = [balance(database, account) for account in (alice, bob)]

    for when in (local(2026, 3, 15), MAY - timedelta(microseconds=1), MAY):
        with pytest.raises(errors.TransferDatedInClosedMonth) as refused:
            move(database, posted(alice, bob, 10), now=when)
        assert (refused.value.status, refused.value.code) == (409, "transfer_dated_in_closed_month")
        assert refused.value.data["closed_at"] == MAY.isoformat()
    # A batch of several groups: each is refused, none written.
    results = database.run(
        lambda s: ledger.submit(
            s,
            groups=[
                GroupRequest(transfers=(posted(alice, bob, amount),), initiator=USER)
                for amount in (1, 2)
            ],
            now=local(2026, 4, 30),
        )
    )
    assert [type(result.error) for result in results] == [errors.TransferDatedInClosedMonth] * 2
    assert [balance(database, account) for account in (alice, bob)] == before

    # A retry of a request made before the month closed still answers as the first time.
    replayed = database.run(
        lambda s: ledger.submit_one(
            s,
            group=GroupRequest(
                transfers=(posted(source, alice, 50),),
                initiator=SYSTEM,
                idempotency_scope="tests",
                idempotency_key="april-top-up",
            ),
            now=local(2026, 4, 20),
        )
    )
    assert replayed.replayed and replayed.transfers[0].id == keyed.id

    # Just after the month start the ledger takes it.
    move(database, posted(alice, bob, 10), now=MAY + timedelta(microseconds=1))
    assert balance(database, bob).balance_minor == before[1].balance_minor + 10


def test_a_connection_that_has_not_seen_the_month_close_is_refused_under_the_chain_lock(
    database: Database,
) -> None:
    """Each connection remembers the newest closed month from the last batch it wrote; a
    connection that wrote before the month job closed a month learns it under the chain
    head's lock, and the whole use case rolls back."""
    _source, alice, bob = history(database)
    other = Database(database.settings)  # its own connections: none has seen a month close
    try:
        move(other, posted(alice, bob, 10), now=local(2026, 4, 25))  # remembers "none closed"
        close_months(database, now=AFTER_APRIL)
        before = [balance(database, account) for account in (alice, bob)]
        with pytest.raises(errors.TransferDatedInClosedMonth):
            move(other, posted(alice, bob, 10), now=local(2026, 4, 26))
        assert [balance(database, account) for account in (alice, bob)] == before
        # The refusal taught the connection: the next one is refused before any write.
        results = other.run(
            lambda s: ledger.submit(
                s,
                groups=[GroupRequest(transfers=(posted(alice, bob, 1),), initiator=USER)],
                now=local(2026, 4, 27),
            )
        )
        assert isinstance(results[0].error, errors.TransferDatedInClosedMonth)
    finally:
        other.dispose()


def test_verify_reports_a_month_balance_that_differs_from_the_transfers(
    database: Database,
) -> None:
    _source, alice, _bob = history(database)
    close_months(database, now=AFTER_APRIL)
    assert database.run(lambda s: verify_ledger(s), write=False).ok

    def shift(amount: int) -> None:
        database.run(
            lambda s: s.execute(
                text(
                    "UPDATE ledger_month_balances SET credits_posted = credits_posted + :amount "
                    "WHERE account_id = :account"
                ),
                {"amount": amount, "account": alice},
            )
        )

    shift(1)
    report = database.run(lambda s: verify_ledger(s), write=False)
    problems = [p for p in report.problems if p.check == "month_balance"]
    assert {p.data["month_start"] for p in problems} == {m.isoformat() for m in (FEB, MAR, MAY)}
    assert all(p.data["account_id"] == alice for p in problems)
    assert problems[0].data["stored"][1] == problems[0].data["replayed"][1] + 1
    shift(-1)  # put it back for the check after the test
    assert database.run(lambda s: verify_ledger(s), write=False).ok


def test_the_job_writes_closed_months_and_then_waits_for_the_next(database: Database) -> None:
    """The job as the worker runs it, at the real time: transfers dated two and three
    months back give it at least two closed months to write."""
    source, alice = database.run(lambda s: (open_system(s).id, open_wallet(s, owner_id="alice").id))
    today = datetime.now(UTC)

    def top_up(session: Session, days_ago: int) -> object:
        when = today - timedelta(days=days_ago)
        return fund(session, source_id=source, wallet_id=alice, amount_minor=days_ago, now=when)

    for days_ago in (70, 40):
        database.run(partial(top_up, days_ago=days_ago))
    job = MonthBalances(database.settings.model_copy(update={"timezone": TIMEZONE}))
    written = [job(database) for _ in range(6)]
    assert sum(written) >= 2 and written[-1] == 0
    assert job.not_before is not None and job.not_before > today
    for (account_id, month_start), stored in month_rows(database).items():
        assert stored == posted_before(database, account_id, month_start)
    opening = database.run(
        lambda s: ledger_queries.month_balance_at(s, account_id=alice, at=today), write=False
    )
    assert opening is not None and opening.balance_minor == 110
