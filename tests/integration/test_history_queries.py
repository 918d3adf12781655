"""History that stays flat, on SQLite and PostgreSQL.

Every list and page query must be answered along an index, in the index's order:
a full scan or a sort of everything the user can see grows with their history.
The plans are read from the SQL the real functions emit (captured as it goes to
the database), so the test fails when the code regresses, not only when a copy
of the SQL does.

On PostgreSQL the tables of a test are tiny, and the planner rightly prefers
reading a few pages and sorting a few rows to walking an index. The plans are
therefore asked with ``SET LOCAL enable_seqscan = off`` and ``enable_sort = off``
(inside the EXPLAIN's own transaction), which make both a last resort: a ``Seq
Scan`` or a ``Sort`` that remains means no index can answer the query in its
order. An index scan with no ``Index Cond`` reads the whole index, and counts as
a full scan too (what the planner picks for one ``OR`` over two columns ordered
by id once sorting is off).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from factories import close_months
from plan_support import captured_selects, faults, plan
from purse.assembly import Purse
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.operations import rules as operation_rules
from purse.operations import spending
from purse.operations.models import Operation
from purse.wallet import banking, queries, service
from purse.wallet.statements import statement_data
from wallet_support import add_card, make_user, top_up


def send(purse: Purse, caller: Principal, *, to: str, amount_minor: int, **more: Any) -> int:
    result = purse.database.run(
        lambda s: service.send(
            s,
            wallet=purse.wallet,
            principal=caller,
            to=to,
            asset="CNY",
            amount_minor=amount_minor,
            note=f"note {amount_minor}",
            idempotency_key=str(uuid.uuid4()),
            **more,
        )
    )
    return result.operation.id


def make_history(purse: Purse) -> tuple[Principal, Principal, list[int]]:
    """Wang and Zhang with sends both ways (some a month back), a pending top-up and a
    request each way; returns them and the ids of the sends, oldest first."""
    database = purse.database
    wang = make_user(database, purse.identity, handle="wang_wei", display_name="Wang Wei")
    zhang = make_user(database, purse.identity, handle="zhang_li", display_name="Zhang Li")
    top_up(purse.wallet, wang, amount_minor=100_000)
    top_up(purse.wallet, zhang, amount_minor=100_000)
    earlier = utc_now() - timedelta(days=40)
    sends = []
    for number in range(12):
        sender, recipient = (wang, "zhang_li") if number % 3 else (zhang, "wang_wei")
        when = {"now": earlier + timedelta(minutes=number)} if number < 4 else {}
        sends.append(send(purse, sender, to=recipient, amount_minor=100 + number, **when))
    card = add_card(purse.wallet, wang)
    database.run(
        lambda s: banking.start_top_up(
            s,
            wallet=purse.wallet,
            principal=wang,
            funding_source_id=card,
            asset="CNY",
            amount_minor=500,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    for asker, payer in ((wang, "zhang_li"), (zhang, "wang_wei")):

        def ask(s: Session, asker: Principal = asker, payer: str = payer) -> object:
            return service.request_money(
                s,
                wallet=purse.wallet,
                principal=asker,
                payer=payer,
                asset="CNY",
                amount_minor=700,
                note="dinner",
            )

        database.run(ask)
    return wang, zhang, sends


def test_every_history_query_reads_along_an_index(purse: Purse) -> None:
    database = purse.database
    wallet = purse.wallet
    wang, _zhang, _sends = make_history(purse)
    user_id = wang.wallet_user_id
    first = database.run(
        lambda s: queries.activity(s, wallet=wallet, user_id=user_id, limit=3), write=False
    )
    assert first.next_cursor is not None
    month = utc_now().astimezone(ZoneInfo(wallet.settings.timezone)).strftime("%Y-%m")
    day_start, month_start = operation_rules.period_starts(utc_now(), wallet.settings.timezone)
    reads: dict[str, Callable[[Session], object]] = {
        "activity, first page": lambda s: queries.activity(
            s, wallet=wallet, user_id=user_id, limit=3
        ),
        "activity, deep page": lambda s: queries.activity(
            s, wallet=wallet, user_id=user_id, cursor=first.next_cursor, limit=3
        ),
        "activity, filtered": lambda s: queries.activity(
            s,
            wallet=wallet,
            user_id=user_id,
            filters=queries.ActivityFilter(direction="out", kind="send", asset="CNY"),
            cursor=first.next_cursor,
        ),
        "activity, searched": lambda s: queries.activity(
            s,
            wallet=wallet,
            user_id=user_id,
            filters=queries.ActivityFilter(search="zhang"),  # by the other party's name
        ),
        "pending": lambda s: queries.pending(s, user_id=user_id),
        "money requests": lambda s: queries.money_requests(s, user_id=user_id, now=utc_now()),
        "statement": lambda s: statement_data(s, wallet=wallet, user_id=user_id, month=month),
        # Every send reads this: running totals and the month's failures, not the month.
        "limits": lambda s: (
            spending.spent_since(
                s, user_id=user_id, asset="CNY", day_start=day_start, month_start=month_start
            ),
            "read",
        ),
    }
    for name, read in reads.items():
        with captured_selects(database.engine) as selects:
            result = database.run(read, write=False)
        assert result, name
        touched = [
            sql for sql, _ in selects if re.search(r"operations|transfers|requests|spending", sql)
        ]
        assert touched, f"{name}: no query of the history tables was captured"
        found = faults(database, selects)
        assert found == [], f"{name}: " + "\n\n".join(f"{sql}\n{steps}" for sql, steps in found)


def _index_bounds(steps: list[str]) -> list[str]:
    """The conditions the plan looks up in an index (SQLite SEARCH, PostgreSQL Index Cond)."""
    return [step for step in steps if step.startswith("SEARCH") or "Index Cond" in step]


def test_a_statement_reads_its_month_and_what_came_after_not_the_whole_history(
    purse: Purse,
) -> None:
    """The opening balance is counted back from the ledger's balance, so every read of
    the account's transfers starts at the month's first instant in the index."""
    database = purse.database
    wallet = purse.wallet
    wang, _zhang, _sends = make_history(purse)
    zone = ZoneInfo(wallet.settings.timezone)
    earlier_month = (utc_now() - timedelta(days=40)).astimezone(zone).strftime("%Y-%m")
    with captured_selects(database.engine) as selects:
        data = database.run(
            lambda s: statement_data(
                s, wallet=wallet, user_id=wang.wallet_user_id, month=earlier_month
            ),
            write=False,
        )
    assert data.line_count > 0
    transfer_reads = [(sql, p) for sql, p in selects if "FROM ledger_transfers" in sql]
    assert len(transfer_reads) >= 2  # the lines and the balances
    for statement, parameters in transfer_reads:
        bounds = _index_bounds(plan(database, statement, parameters))
        assert bounds, statement
        assert all(re.search(r"created_at\s*>", bound) for bound in bounds), (statement, bounds)


def test_a_statement_from_a_month_balance_reads_its_month_only(purse: Purse) -> None:
    """Once the ledger's month job has closed the months before it, a statement starts
    from the month balance at its start (one step along that table's key) and reads
    the transfers of its own month: bounded on both sides, nothing after it."""
    database = purse.database
    wallet = purse.wallet
    wang, _zhang, _sends = make_history(purse)
    timezone = wallet.settings.timezone
    assert close_months(database, timezone=timezone) > 0
    month = utc_now().astimezone(ZoneInfo(timezone)).strftime("%Y-%m")
    with captured_selects(database.engine) as selects:
        data = database.run(
            lambda s: statement_data(s, wallet=wallet, user_id=wang.wallet_user_id, month=month),
            write=False,
        )
    assert data.line_count > 0
    assert faults(database, selects) == []
    month_reads = [(sql, p) for sql, p in selects if "FROM ledger_month_balances" in sql]
    transfer_reads = [(sql, p) for sql, p in selects if "FROM ledger_transfers" in sql]
    assert month_reads and len(transfer_reads) >= 2  # the lines and the balances
    assert not [sql for sql, _ in selects if "FROM ledger_accounts" in sql]  # not counted back
    for statement, parameters in month_reads:
        bounds = _index_bounds(plan(database, statement, parameters))
        assert bounds and all(re.search(r"month_start\s*<", b) for b in bounds), bounds
    for statement, parameters in transfer_reads:
        bounds = _index_bounds(plan(database, statement, parameters))
        assert bounds, statement
        assert all(re.search(r"created_at\s*>", bound) for bound in bounds), bounds
        assert all(re.search(r"created_at\s*<", bound) for bound in bounds), bounds


def test_the_plan_check_catches_a_query_that_reads_everything(purse: Purse) -> None:
    """The check itself can fail: the old activity query (one OR over both sides) is caught."""
    database = purse.database
    wang, _zhang, _sends = make_history(purse)
    user_id = wang.wallet_user_id
    with captured_selects(database.engine) as selects:
        database.run(
            lambda s: list(
                s.scalars(
                    select(Operation)
                    .where(
                        or_(Operation.user_id == user_id, Operation.counterparty_user_id == user_id)
                    )
                    .order_by(Operation.id.desc())
                    .limit(4)
                )
            ),
            write=False,
        )
    assert len(faults(database, selects)) == 1


def _visible_ids(purse: Purse, user_id: int) -> list[int]:
    """Every operation the user may see, newest first, asked the slow and simple way."""
    return purse.database.run(
        lambda s: list(
            s.scalars(
                select(Operation.id)
                .where(or_(Operation.user_id == user_id, Operation.counterparty_user_id == user_id))
                .order_by(Operation.id.desc())
            )
        ),
        write=False,
    )


def _all_pages(purse: Purse, user_id: int, *, limit: int, **filters: Any) -> list[int]:
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(100):

        def read(s: Session, cursor: str | None = cursor) -> queries.ActivityPage:
            return queries.activity(
                s,
                wallet=purse.wallet,
                user_id=user_id,
                filters=queries.ActivityFilter(**filters),
                cursor=cursor,
                limit=limit,
            )

        page = purse.database.run(read, write=False)
        assert len(page.items) <= limit
        seen.extend(item.id for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_pages_across_both_sides_neither_skip_nor_repeat(purse: Purse, limit: int) -> None:
    wang, zhang, _sends = make_history(purse)
    for principal in (wang, zhang):
        user_id = principal.wallet_user_id
        expected = _visible_ids(purse, user_id)
        assert len(expected) > 10
        assert _all_pages(purse, user_id, limit=limit) == expected


def test_filters_page_across_both_sides(purse: Purse) -> None:
    wang, _zhang, sends = make_history(purse)
    user_id = wang.wallet_user_id
    received = _all_pages(purse, user_id, limit=2, direction="in", kind="send")
    sent = _all_pages(purse, user_id, limit=2, direction="out", kind="send")
    # Zhang sent every third (0, 3, 6, 9); wang the others.
    assert received == [sends[i] for i in (9, 6, 3, 0)]
    assert sent == [sends[i] for i in reversed(range(12)) if i % 3]
    with_zhang = _all_pages(purse, user_id, limit=3, counterparty="zhang_li")
    assert with_zhang == list(reversed(sends))


def test_an_operation_on_both_sides_appears_once(purse: Purse) -> None:
    """No wallet use case makes one today (a send to oneself is refused), but an
    operation whose owner is also its counterparty is on both sides of the union:
    it must be listed once, and paging past it must not skip its neighbours."""
    wang, _zhang, sends = make_history(purse)
    user_id = wang.wallet_user_id
    both = sends[7]
    purse.database.run(
        lambda s: s.execute(
            update(Operation).where(Operation.id == both).values(counterparty_user_id=user_id)
        )
    )
    expected = _visible_ids(purse, user_id)
    assert expected.count(both) == 1
    for limit in (1, 3, 50):
        assert _all_pages(purse, user_id, limit=limit) == expected
