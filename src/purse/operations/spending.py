"""Running totals of what users spend, so that a limit check does not grow with history.

Limits count the money that left a user's wallet to others (operations of the kinds
that ``spend``, unless they failed) since the start of the day and of the month, in
``PURSE_TIMEZONE``. Summing the month's operations on every send costs more with
every send a user makes; instead:

* Each spending operation adds its amount, when it is written, to its user's total
  for its asset and its 15-minute slot (UTC) in ``operation_spending``. Every
  timezone's offset from UTC is a multiple of 15 minutes, so a local day or month
  is always a whole number of slots, and the totals stay right if
  ``PURSE_TIMEZONE`` changes.
* The totals never go down. A spending operation that fails (a withdrawal the bank
  refused) is taken back at check time instead: failed operations are few, and an
  index finds a user's failed ones of the month without reading the rest. One
  that succeeds after it failed (a late payout) simply stops being failed.
* The slot rows are written only by a transaction holding its user's row lock
  (the limit check needs it anyway, see ``operations.service.lock_user``), so they
  add no lock waits and no new lock order.

``purse ledger verify`` recomputes the totals from the operations
(:func:`check_spending`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from purse.ledger.verify import VerifyReport
from purse.operations import kinds
from purse.operations.models import Operation, SpendingSlot
from purse.prepared import Prepared

SLOT_MINUTES = 15

_slots = cast(Table, SpendingSlot.__table__)


def _upsert(dialect: Any) -> Any:
    statement = dialect.insert(_slots)
    return statement.on_conflict_do_update(
        index_elements=[_slots.c.user_id, _slots.c.asset, _slots.c.slot_start],
        set_={"amount_minor": _slots.c.amount_minor + statement.excluded.amount_minor},
    )


# Built once per dialect: "add to this slot's total, opening it if it is new".
_ADD = {"sqlite": Prepared(_upsert(sqlite)), "postgresql": Prepared(_upsert(postgresql))}


_operations = cast(Table, Operation.__table__)

# Built once (a statement built per call costs more than running it): a user's
# totals since the day's and the month's first slot, and the failures to take back.
_SPENT = select(
    func.coalesce(
        func.sum(_slots.c.amount_minor).filter(_slots.c.slot_start >= bindparam("day")), 0
    ),
    func.coalesce(func.sum(_slots.c.amount_minor), 0),
).where(
    _slots.c.user_id == bindparam("user_id"),
    _slots.c.asset == bindparam("asset"),
    _slots.c.slot_start >= bindparam("month"),
)
_FAILED = select(
    func.coalesce(
        func.sum(_operations.c.amount_minor).filter(_operations.c.created_at >= bindparam("day")),
        0,
    ),
    func.coalesce(func.sum(_operations.c.amount_minor), 0),
).where(
    _operations.c.user_id == bindparam("user_id"),
    _operations.c.status == "failed",
    _operations.c.asset == bindparam("asset"),
    _operations.c.created_at >= bindparam("month"),
    _operations.c.kind.in_(bindparam("kinds", expanding=True)),
)
# Both in one statement: each is an aggregate, so one row each, joined to one row.
_spent, _failed = _SPENT.subquery(), _FAILED.subquery()
_SPENT_AND_FAILED = Prepared(
    select(*_spent.c, *_failed.c).select_from(_spent.join(_failed, true()))
)


def slot_of(moment: datetime) -> datetime:
    """The start of the 15-minute slot (UTC) that ``moment`` falls in."""
    moment = moment.astimezone(UTC)
    return moment.replace(
        minute=moment.minute - moment.minute % SLOT_MINUTES, second=0, microsecond=0
    )


def count_spending(
    session: Session, *, user_id: int, asset: str, amount_minor: int, at: datetime
) -> None:
    """Add a spending operation written now to its user's running total."""
    dialect = session.get_bind().dialect.name
    _ADD[dialect].execute(
        session,
        {
            "user_id": user_id,
            "asset": asset,
            "slot_start": slot_of(at),
            "amount_minor": amount_minor,
        },
    )


def spent_since(
    session: Session, *, user_id: int, asset: str, day_start: datetime, month_start: datetime
) -> tuple[int, int]:
    """What the user spent in ``asset`` since ``day_start`` and since ``month_start``.

    Both starts are local midnights, so whole slots; failed operations are left out.
    """
    day, month = slot_of(day_start), slot_of(month_start)
    assert day == day_start and month == month_start, "periods start on a slot"
    parameters = {
        "user_id": user_id,
        "asset": asset,
        "day": day,
        "month": month,
        "kinds": kinds.spending_kinds(),
    }
    today, this_month, failed_today, failed_month = _SPENT_AND_FAILED.first(session, parameters)
    return int(today) - int(failed_today), int(this_month) - int(failed_month)


def check_spending(session: Session, report: VerifyReport) -> None:
    """The running totals agree with the spending operations they count."""
    expected: dict[tuple[int, str, datetime], int] = defaultdict(int)
    rows = session.execute(
        select(Operation.user_id, Operation.asset, Operation.created_at, Operation.amount_minor)
        .where(Operation.kind.in_(kinds.spending_kinds()))
        .execution_options(yield_per=10_000)
    )
    for user_id, asset, created_at, amount_minor in rows:
        expected[(user_id, asset, slot_of(created_at))] += amount_minor
    stored = {
        (user_id, asset, slot_start): amount_minor
        for user_id, asset, slot_start, amount_minor in session.execute(
            select(_slots.c.user_id, _slots.c.asset, _slots.c.slot_start, _slots.c.amount_minor)
        )
    }
    wrong = sorted(
        key for key in expected.keys() | stored.keys() if expected.get(key, 0) != stored.get(key, 0)
    )
    if wrong:
        user_id, asset, slot_start = wrong[0]
        report.add(
            "spending_totals",
            f"{len(wrong)} spending totals disagree with the operations, the first of user "
            f"{user_id} in {asset} at {slot_start.isoformat()}",
            count=len(wrong),
        )
