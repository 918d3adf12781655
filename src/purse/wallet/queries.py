"""Reads of the wallet: balances, activity, money requests, spending.

Everything here is read on behalf of one user, who sees the operations they made
and the sends made to them (:mod:`purse.operations.queries` says how each looks
from either side); anyone else's is "not found".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from purse.identity.models import User
from purse.ledger.models import Account
from purse.ledger.rules import available_minor
from purse.money.assets import Asset
from purse.operations import kinds
from purse.operations.accounts import user_owner
from purse.operations.models import Operation, OperationAccount
from purse.operations.queries import OperationView, Party, parties, views
from purse.wallet.context import Wallet
from purse.wallet.errors import CursorInvalid, MoneyRequestNotFound
from purse.wallet.kinds import TOP_UP
from purse.wallet.models import MoneyRequest

DIRECTIONS = ("in", "out", "exchange")


@dataclass(frozen=True, slots=True)
class BalanceView:
    asset: Asset
    balance_minor: int  # posted money in the wallet
    available_minor: int  # what can be spent: the balance less holds
    held_minor: int  # reserved for pending withdrawals
    incoming_minor: int  # top-ups waiting for the bank


def balances(session: Session, *, wallet: Wallet, user_id: int) -> list[BalanceView]:
    """One balance per asset the user holds or has held, in the order the operator offers."""
    rows = session.execute(
        select(OperationAccount.asset, Account)
        .join(Account, Account.id == OperationAccount.account_id)
        .where(OperationAccount.owner == user_owner(user_id))
    ).all()
    incoming = dict(
        session.execute(
            select(Operation.asset, func.sum(Operation.amount_minor))
            .where(
                Operation.user_id == user_id,
                Operation.kind == TOP_UP.name,
                Operation.status == "pending",
            )
            .group_by(Operation.asset)
        ).all()
    )
    order = {code: index for index, code in enumerate(wallet.settings.wallet_assets)}
    views = [
        BalanceView(
            asset=wallet.assets.get(asset),
            balance_minor=account.credits_posted - account.debits_posted,
            available_minor=available_minor(
                credits_posted=account.credits_posted,
                debits_posted=account.debits_posted,
                debits_pending=account.debits_pending,
            ),
            held_minor=account.debits_pending,
            incoming_minor=int(incoming.get(asset) or 0),
        )
        for asset, account in rows
    ]
    return sorted(views, key=lambda view: (order.get(view.asset.code, len(order)), view.asset.code))


# The tables listed newest first from two sides: the user's own rows and others' to them.
_Listed = TypeVar("_Listed", Operation, MoneyRequest)


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    asset: str | None = None
    direction: str | None = None
    kind: str | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    counterparty: str | None = None  # a handle
    search: str | None = None  # in the note or the counterparty's handle or name


@dataclass(frozen=True, slots=True)
class ActivityPage:
    items: list[OperationView]
    next_cursor: str | None


def _cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise CursorInvalid()
    return int(value)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _newest_of_both_sides(
    session: Session,
    model: type[_Listed],
    mine: tuple[Any, ...],
    theirs: tuple[Any, ...],
    *,
    conditions: list[Any],
    limit: int,
) -> list[_Listed]:
    """The newest ``limit`` rows of ``model`` on either side, newest first.

    Each side's ids are read newest first along the (user, id) index its first
    condition names, and the two ordered streams are merged (SQLite's MERGE,
    PostgreSQL's Merge Append) until ``limit``: the work is at most ``2 * limit``
    index entries, however long the history. Then those rows are read by primary
    key (ordered here: there are ``limit`` of them). Merging ids rather than whole
    rows keeps the statement small to build, which is most of a page's cost. The
    second side must exclude the rows the first already has, so none appears twice.

    The two databases need the sides written differently to see the order:
    SQLite merges two plain SELECTs along their indexes (an ORDER BY and LIMIT
    inside would hide the order from it, and it sorts again), while PostgreSQL
    merges only sides that carry their own ORDER BY and LIMIT.
    """
    sides = [select(model.id).where(*side, *conditions) for side in (mine, theirs)]
    if session.get_bind().dialect.name != "sqlite":
        sides = [select(side.order_by(model.id.desc()).limit(limit).subquery()) for side in sides]
    both = union_all(*sides).subquery("visible")
    page = select(both.c.id).order_by(both.c.id.desc()).limit(limit)
    rows = session.scalars(select(model).where(model.id.in_(page)))
    return sorted(rows, key=lambda row: row.id, reverse=True)


def activity(
    session: Session,
    *,
    wallet: Wallet,
    user_id: int,
    filters: ActivityFilter = ActivityFilter(),  # noqa: B008 - frozen, never mutated
    cursor: str | None = None,
    limit: int = 20,
) -> ActivityPage:
    """A page of the user's operations, newest first, with keyset pagination on the id.

    The cost of a page does not grow with history. The user's operations are the
    union of two sides, each read newest first along its own index: the ones
    they made (``ix_operations_user``) and the ones sent to them that they did not
    make (``ix_operations_counterparty``; an operation of theirs to themselves is
    on the first side only, so it appears once). The database merges the two
    ordered streams and stops after ``limit + 1`` rows. One ``OR`` over both
    columns instead would read and sort everything the user can see.
    """
    limit = max(1, min(limit, wallet.settings.activity_page_size_max))
    before_id = _cursor(cursor)
    conditions: list[Any] = []
    if before_id is not None:
        conditions.append(Operation.id < before_id)
    if filters.asset:
        conditions.append(
            or_(
                Operation.asset == filters.asset.upper(),
                Operation.to_asset == filters.asset.upper(),
            )
        )
    if filters.kind:
        conditions.append(Operation.kind == filters.kind)
    if filters.status:
        conditions.append(Operation.status == filters.status)
    if filters.direction in DIRECTIONS:
        direction = kinds.Direction(filters.direction)
        owned = kinds.kinds_where(kinds.Party.owner, direction)
        received = kinds.kinds_where(kinds.Party.counterparty, direction)
        conditions.append(
            or_(
                and_(Operation.user_id == user_id, Operation.kind.in_(owned)),
                and_(Operation.counterparty_user_id == user_id, Operation.kind.in_(received)),
            )
        )
    zone = ZoneInfo(wallet.settings.timezone)
    if filters.date_from:
        conditions.append(Operation.created_at >= datetime.combine(filters.date_from, time(), zone))
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time(), zone)
        conditions.append(Operation.created_at < end)
    if filters.counterparty:
        other = session.scalar(
            select(User.id).where(User.handle == filters.counterparty.strip().lstrip("@").lower())
        )
        conditions.append(
            or_(
                and_(Operation.user_id == user_id, Operation.counterparty_user_id == other),
                and_(Operation.counterparty_user_id == user_id, Operation.user_id == other),
            )
        )
    if filters.search:
        pattern = _like(filters.search.strip()[:64])

        def named(party: Any) -> Any:
            # The other party of this row, read by its key: never a scan of every user.
            return exists().where(
                User.id == party,
                or_(
                    User.handle.ilike(pattern, escape="\\"),
                    User.display_name.ilike(pattern, escape="\\"),
                ),
            )

        conditions.append(
            or_(
                Operation.note.ilike(pattern, escape="\\"),
                and_(Operation.user_id == user_id, named(Operation.counterparty_user_id)),
                and_(Operation.counterparty_user_id == user_id, named(Operation.user_id)),
            )
        )
    rows = _newest_of_both_sides(
        session,
        Operation,
        (Operation.user_id == user_id,),
        (Operation.counterparty_user_id == user_id, Operation.user_id != user_id),
        conditions=conditions,
        limit=limit + 1,
    )
    more = len(rows) > limit
    items = views(session, rows[:limit], viewer_id=user_id)
    return ActivityPage(items=items, next_cursor=str(rows[limit - 1].id) if more else None)


def pending(session: Session, *, user_id: int, limit: int = 20) -> list[OperationView]:
    """Money not yet final: top-ups waiting for the bank, withdrawals on hold (with expiry)."""
    rows = list(
        session.scalars(
            select(Operation)
            .where(Operation.user_id == user_id, Operation.status == "pending")
            .order_by(Operation.id.desc())
            .limit(limit)
        )
    )
    return views(session, rows, viewer_id=user_id)


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    direction: str  # "incoming" (asked of me) or "outgoing" (I asked)
    other: Party
    asset: str
    amount_minor: int
    note: str | None
    status: str
    expires_at: datetime
    created_at: datetime
    operation_reference: str | None


def money_requests(
    session: Session, *, user_id: int, now: datetime, limit: int = 50, request_id: int | None = None
) -> list[RequestView]:
    """Requests made by or of the user, newest first; open ones past their time show expired.

    Like :func:`activity`, the two sides are read newest first along their own
    indexes and merged, so the cost does not grow with the user's history.
    """
    rows = _newest_of_both_sides(
        session,
        MoneyRequest,
        (MoneyRequest.requester_id == user_id,),
        (MoneyRequest.payer_id == user_id, MoneyRequest.requester_id != user_id),
        conditions=[] if request_id is None else [MoneyRequest.id == request_id],
        limit=limit,
    )
    if request_id is not None and not rows:
        raise MoneyRequestNotFound()
    others = parties(
        session, {r.payer_id if r.requester_id == user_id else r.requester_id for r in rows}
    )
    references = dict(
        session.execute(
            select(Operation.id, Operation.reference).where(
                Operation.id.in_([r.operation_id for r in rows if r.operation_id is not None])
            )
        ).all()
    )
    found = []
    for row in rows:
        outgoing = row.requester_id == user_id
        status = "expired" if row.status == "open" and row.expires_at <= now else row.status
        found.append(
            RequestView(
                id=row.id,
                direction="outgoing" if outgoing else "incoming",
                other=others[row.payer_id if outgoing else row.requester_id],
                asset=row.asset,
                amount_minor=row.amount_minor,
                note=row.note,
                status=status,
                expires_at=row.expires_at,
                created_at=row.created_at,
                operation_reference=references.get(row.operation_id) if row.operation_id else None,
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Spending:
    asset: str
    months: list[tuple[str, int]]  # ("2026-11", minor units sent and withdrawn)
    counterparties: list[tuple[Party, int]]  # this month, largest first


def spending(
    session: Session, *, wallet: Wallet, user_id: int, asset: str, now: datetime, months: int = 6
) -> Spending:
    """Money the user sent or withdrew per month, and to whom this month."""
    zone = ZoneInfo(wallet.settings.timezone)
    local = now.astimezone(zone)
    starts = []
    year, month = local.year, local.month
    for _ in range(months):
        starts.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    starts.reverse()
    first = datetime(starts[0][0], starts[0][1], 1, tzinfo=zone)
    rows = session.execute(
        select(Operation.created_at, Operation.amount_minor, Operation.counterparty_user_id).where(
            Operation.user_id == user_id,
            Operation.asset == asset,
            Operation.kind.in_(kinds.spending_kinds()),
            Operation.status == "completed",
            Operation.created_at >= first,
        )
    ).all()
    per_month: dict[str, int] = {f"{y:04d}-{m:02d}": 0 for y, m in starts}
    this_month = f"{local.year:04d}-{local.month:02d}"
    per_party: dict[int, int] = defaultdict(int)
    for created_at, amount, other in rows:
        label = created_at.astimezone(zone).strftime("%Y-%m")
        per_month[label] = per_month.get(label, 0) + amount
        if label == this_month and other is not None:
            per_party[other] += amount
    top = sorted(per_party.items(), key=lambda item: -item[1])[:5]
    named = parties(session, {i for i, _ in top})
    return Spending(
        asset=asset,
        months=list(per_month.items()),
        counterparties=[(named[i], amount) for i, amount in top],
    )


@dataclass(frozen=True, slots=True)
class WalletBalance:
    handle: str
    balance_minor: int
    available_minor: int


def all_balances(
    session: Session, *, asset: str, limit: int
) -> tuple[list[WalletBalance], int, int]:
    """Every user wallet in ``asset`` (up to ``limit``), with the sum of all of them.

    For operators: read in one transaction (REPEATABLE READ on PostgreSQL, one
    read transaction on SQLite), so the sum is of one moment, never half of a
    transfer. Returns the wallets, how many there are, and the total balance.
    """
    rows = session.execute(
        select(User.handle, Account)
        .join(OperationAccount, OperationAccount.account_id == Account.id)
        .join(User, OperationAccount.owner == literal("user:") + cast(User.id, String))
        .where(OperationAccount.asset == asset, Account.kind == "wallet")
        .order_by(User.handle)
        .limit(limit)
    ).all()
    count, total = session.execute(
        select(
            func.count(), func.coalesce(func.sum(Account.credits_posted - Account.debits_posted), 0)
        ).where(Account.asset == asset, Account.kind == "wallet", Account.owner_kind == "user")
    ).one()
    wallets = [
        WalletBalance(
            handle=handle,
            balance_minor=account.credits_posted - account.debits_posted,
            available_minor=available_minor(
                credits_posted=account.credits_posted,
                debits_posted=account.debits_posted,
                debits_pending=account.debits_pending,
            ),
        )
        for handle, account in rows
    ]
    return wallets, int(count), int(total)
