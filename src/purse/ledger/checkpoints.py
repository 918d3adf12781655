"""Month balances: each account's posted totals at the start of every closed month.

A statement of an old month used to count its opening balance back from today's
balance, summing everything posted since: its cost grew with the history after
it. The month job instead keeps, per account and month start, the posted debits
and credits dated before that instant (``ledger_month_balances``), and a
statement adds only its own month to the one at its start.

How the rows stay true, since a row is never rewritten:

* Months close in order, oldest first. A month is closed once it has been over
  for ``ledger_checkpoint_grace_seconds`` (time for transfers dated just before
  midnight to commit). Closing the month that ends at ``B`` sets the chain head's
  ``checkpoint_at`` to ``B`` in the same transaction as the first rows at ``B``;
  from then on the ledger refuses any transfer dated at or before ``B``
  (``transfer_dated_in_closed_month``), so nothing can be added before ``B``
  once a row at ``B`` exists. That check runs under the chain head's lock, which
  the job takes too, so a batch either committed before the month closed (and is
  summed) or sees it closed (and is refused).
* A row at ``B`` is the account's previous row plus its postings from the month
  start before ``B`` (``checkpoint_from``) to ``B``: one grouped read of the
  month, not of the history. Only accounts that moved in the month get a row; an
  account's newest row before ``B`` is then its balance at the start of every
  month since, as every month since was closed with no row for it. The first
  month closed adds up everything dated before it: accounts start from zero.
* A run writes one month for at most ``accounts_max`` accounts (by account id),
  remembering where it stopped (``checkpoint_account_id``), so a run is short
  whatever the ledger's size, and a second run never writes a row twice (the
  key is (account, month start)).

``purse ledger verify`` checks every row against the transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from purse.ledger.models import Account, ChainHead, MonthBalance, Transfer
from purse.ledger.rules import POSTED_KINDS, month_start_after
from purse.models import utc_now

_accounts = cast(Table, Account.__table__)
_transfers = cast(Table, Transfer.__table__)
_chain = cast(Table, ChainHead.__table__)
_months = cast(Table, MonthBalance.__table__)

_POSTED = sorted(kind.value for kind in POSTED_KINDS)


@dataclass(frozen=True, slots=True)
class MonthToClose:
    """The month the job works on next: it ends at ``month_start``."""

    month_start: datetime
    started: bool  # some of its rows are written already: carry on whatever the time


def month_to_close(session: Session, *, timezone: str) -> MonthToClose | None:
    """The next month whose balances are to be written, or None before the first transfer.

    A read: the job asks this outside a write transaction, and writes only when
    the month is due. Before the first month is closed this reads the oldest
    transfer's date, which no index answers; it is asked until then only.
    """
    connection = session.connection()
    head = connection.execute(
        select(_chain.c.checkpoint_at, _chain.c.checkpoint_account_id).where(_chain.c.id == 1)
    ).one()
    if head.checkpoint_account_id is not None:
        return MonthToClose(month_start=head.checkpoint_at, started=True)
    after = head.checkpoint_at
    if after is None:
        after = connection.execute(select(func.min(_transfers.c.created_at))).scalar_one()
        if after is None:
            return None
    return MonthToClose(month_start=month_start_after(after, timezone), started=False)


def write_month_balances(
    session: Session,
    *,
    timezone: str,
    grace_seconds: int,
    accounts_max: int,
    now: datetime | None = None,
) -> int:
    """Write the next closed month's balances for up to ``accounts_max`` accounts; how many rows."""
    assert session.in_transaction(), "ledger writers run inside the caller's DB transaction"
    assert accounts_max > 0
    connection = session.connection()
    now = now or utc_now()
    # What is due is asked before the lock (the first time, it reads the oldest transfer's
    # date); the rest runs under the chain head's lock, so batches are either summed or
    # refused, and two jobs take turns.
    due = month_to_close(session, timezone=timezone)
    if due is None or not (
        due.started or due.month_start <= now - timedelta(seconds=grace_seconds)
    ):
        return 0
    head_query = select(
        _chain.c.checkpoint_at, _chain.c.checkpoint_from, _chain.c.checkpoint_account_id
    ).where(_chain.c.id == 1)
    if connection.dialect.name != "sqlite":  # SQLite's writer holds its write lock already
        head_query = head_query.with_for_update()
    head = connection.execute(head_query).one()
    if head.checkpoint_account_id is not None:
        month_from, month_start, after_id = (
            head.checkpoint_from,
            head.checkpoint_at,
            head.checkpoint_account_id,
        )
    elif due.started or (head.checkpoint_at is not None and head.checkpoint_at >= due.month_start):
        return 0  # another job finished the month meanwhile; the next run starts the next
    else:
        month_from, month_start, after_id = head.checkpoint_at, due.month_start, 0

    totals = _month_totals(
        connection,
        month_from=month_from,
        month_start=month_start,
        after_id=after_id,
        limit=accounts_max,
    )
    moved = {account_id: sums for account_id, sums in totals if sums != (0, 0)}
    previous = _previous_balances(connection, account_ids=sorted(moved), before=month_start)
    rows = [
        {
            "account_id": account_id,
            "month_start": month_start,
            "debits_posted": previous.get(account_id, (0, 0))[0] + debits,
            "credits_posted": previous.get(account_id, (0, 0))[1] + credits,
        }
        for account_id, (debits, credits) in sorted(moved.items())
    ]
    if rows:
        connection.execute(insert(_months), rows)
    last_id = totals[-1][0] if len(totals) == accounts_max else None
    connection.execute(
        update(_chain)
        .where(_chain.c.id == 1)
        .values(
            checkpoint_at=month_start, checkpoint_from=month_from, checkpoint_account_id=last_id
        )
    )
    return len(rows)


def _month_totals(
    connection: Connection,
    *,
    month_from: datetime | None,
    month_start: datetime,
    after_id: int,
    limit: int,
) -> list[tuple[int, tuple[int, int]]]:
    """(account id, (posted debits, posted credits) from ``month_from`` to ``month_start``)
    of the next ``limit`` accounts after ``after_id``.

    One statement for the batch of accounts: each sum is a range of one account's
    (account, created_at) index, so it reads the month's postings, never the
    history before it (save for the first month, which has no lower bound).
    """

    def posted(side: Any) -> Any:
        conditions = [
            side == _accounts.c.id,
            _transfers.c.created_at < bindparam("month_start"),
            _transfers.c.kind.in_(_POSTED),
        ]
        if month_from is not None:
            conditions.append(_transfers.c.created_at >= bindparam("month_from"))
        return (
            select(func.coalesce(func.sum(_transfers.c.amount_minor), 0))
            .where(and_(*conditions))
            .scalar_subquery()
        )

    query = (
        select(
            _accounts.c.id,
            posted(_transfers.c.debit_account_id),
            posted(_transfers.c.credit_account_id),
        )
        .where(_accounts.c.id > after_id)
        .order_by(_accounts.c.id)
        .limit(limit)
    )
    values = {"month_start": month_start, "month_from": month_from}
    if month_from is None:
        del values["month_from"]
    return [(row[0], (int(row[1]), int(row[2]))) for row in connection.execute(query, values)]


def _previous_balances(
    connection: Connection, *, account_ids: list[int], before: datetime
) -> dict[int, tuple[int, int]]:
    """Each account's newest row before ``before``: (posted debits, posted credits)."""
    if not account_ids:
        return {}
    newest = (
        select(_months.c.account_id, func.max(_months.c.month_start).label("month_start"))
        .where(_months.c.account_id.in_(account_ids), _months.c.month_start < before)
        .group_by(_months.c.account_id)
        .subquery()
    )
    rows = connection.execute(
        select(_months.c.account_id, _months.c.debits_posted, _months.c.credits_posted).join(
            newest,
            and_(
                newest.c.account_id == _months.c.account_id,
                newest.c.month_start == _months.c.month_start,
            ),
        )
    )
    return {row.account_id: (row.debits_posted, row.credits_posted) for row in rows}
