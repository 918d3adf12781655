"""Reads of the wallet: balances, activity, one operation with its timeline, spending.

Everything here is read on behalf of one user, who sees the operations they made
and the sends made to them; anyone else's operation is "not found". The person
who received money does not see the sender's session or device.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from purse.errors import PurseError, all_error_classes
from purse.funding.errors import BankDeclined
from purse.identity.models import User
from purse.ledger.models import Account
from purse.money.assets import Asset
from purse.wallet import rules
from purse.wallet.errors import CursorInvalid, MoneyRequestNotFound, OperationNotFound
from purse.wallet.models import (
    FundingSource,
    MoneyRequest,
    Operation,
    OperationEvent,
    WalletAccount,
)
from purse.wallet.operations import user_owner

if TYPE_CHECKING:
    from purse.wallet.context import Wallet

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
        select(WalletAccount.asset, Account)
        .join(Account, Account.id == WalletAccount.account_id)
        .where(WalletAccount.owner == user_owner(user_id))
    ).all()
    incoming = dict(
        session.execute(
            select(Operation.asset, func.sum(Operation.amount_minor))
            .where(
                Operation.user_id == user_id,
                Operation.kind == "top_up",
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
            available_minor=account.credits_posted - account.debits_posted - account.debits_pending,
            held_minor=account.debits_pending,
            incoming_minor=int(incoming.get(asset) or 0),
        )
        for asset, account in rows
    ]
    return sorted(views, key=lambda view: (order.get(view.asset.code, len(order)), view.asset.code))


@dataclass(frozen=True, slots=True)
class Party:
    user_id: int
    handle: str
    masked_name: str


@dataclass(frozen=True, slots=True)
class SourceView:
    id: int
    kind: str
    brand: str
    last4: str
    expiry_month: int | None
    expiry_year: int | None
    status: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    event: str
    detail: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OperationView:
    id: int
    reference: str
    kind: str
    status: str
    direction: str
    asset: str
    amount_minor: int
    fee_minor: int
    to_asset: str | None
    to_amount_minor: int | None
    rate: str | None
    note: str | None
    counterparty: Party | None
    funding_source: SourceView | None
    failure_code: str | None
    money_request_id: int | None
    created_at: datetime
    completed_at: datetime | None
    hold_expires_at: datetime | None
    # Who started it and how; only for the user who did.
    initiator_kind: str | None
    authenticated_by: str | None
    device: str | None
    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def failure(self) -> PurseError | None:
        """The failure as an error of the catalogue, for its message and next step."""
        if self.failure_code is None:
            return None
        cls = all_error_classes().get(self.failure_code, BankDeclined)
        return cls()

    @property
    def signed_amount_minor(self) -> int:
        return -self.amount_minor if self.direction == "out" else self.amount_minor


def _direction(operation: Operation, viewer_id: int) -> str:
    if operation.kind == "convert":
        return "exchange"
    if operation.kind == "top_up":
        return "in"
    if operation.kind == "send" and operation.counterparty_user_id == viewer_id:
        return "in"
    return "out"


def _views(
    session: Session, operations: list[Operation], *, viewer_id: int, with_timeline: bool = False
) -> list[OperationView]:
    party_ids = {
        other
        for operation in operations
        for other in (operation.user_id, operation.counterparty_user_id)
        if other is not None and other != viewer_id
    }
    parties = {
        user.id: Party(
            user_id=user.id, handle=user.handle, masked_name=rules.mask_name(user.display_name)
        )
        for user in (
            session.scalars(select(User).where(User.id.in_(party_ids))) if party_ids else []
        )
    }
    source_ids = {o.funding_source_id for o in operations if o.funding_source_id is not None}
    sources = {
        source.id: _source_view(source)
        for source in (
            session.scalars(select(FundingSource).where(FundingSource.id.in_(source_ids)))
            if source_ids
            else []
        )
    }
    timelines: dict[int, list[TimelineEntry]] = defaultdict(list)
    if with_timeline and operations:
        for event in session.scalars(
            select(OperationEvent)
            .where(OperationEvent.operation_id.in_([o.id for o in operations]))
            .order_by(OperationEvent.id)
        ):
            timelines[event.operation_id].append(
                TimelineEntry(event=event.event, detail=event.detail, at=event.created_at)
            )
    views = []
    for operation in operations:
        mine = operation.user_id == viewer_id
        other = operation.counterparty_user_id if mine else operation.user_id
        views.append(
            OperationView(
                id=operation.id,
                reference=operation.reference,
                kind=operation.kind,
                status=operation.status,
                direction=_direction(operation, viewer_id),
                asset=operation.asset,
                amount_minor=operation.amount_minor,
                fee_minor=operation.fee_minor,
                to_asset=operation.to_asset,
                to_amount_minor=operation.to_amount_minor,
                rate=operation.rate,
                note=operation.note,
                counterparty=parties.get(other) if other is not None else None,
                funding_source=sources.get(operation.funding_source_id)  # type: ignore[arg-type]
                if mine
                else None,
                failure_code=operation.failure_code,
                money_request_id=operation.money_request_id,
                created_at=operation.created_at,
                completed_at=operation.completed_at,
                hold_expires_at=operation.hold_expires_at
                if operation.status == "pending"
                else None,
                initiator_kind=operation.initiator_kind if mine else None,
                authenticated_by=operation.authenticated_by if mine else None,
                device=operation.device if mine else None,
                timeline=tuple(timelines.get(operation.id, ())),
            )
        )
    return views


def _source_view(source: FundingSource) -> SourceView:
    return SourceView(
        id=source.id,
        kind=source.kind,
        brand=source.brand,
        last4=source.last4,
        expiry_month=source.expiry_month,
        expiry_year=source.expiry_year,
        status=source.status,
    )


def _visible_to(user_id: int) -> object:
    return or_(Operation.user_id == user_id, Operation.counterparty_user_id == user_id)


def operation_view(session: Session, *, user_id: int, reference: str) -> OperationView:
    """One operation with its timeline; "not found" unless the user made or received it."""
    operation = session.scalars(
        select(Operation).where(
            Operation.reference == rules.normalize_reference(reference),
            _visible_to(user_id),  # type: ignore[arg-type]
        )
    ).first()
    if operation is None:
        raise OperationNotFound()
    return _views(session, [operation], viewer_id=user_id, with_timeline=True)[0]


def view_of(session: Session, *, operation: Operation, user_id: int) -> OperationView:
    """The view of an operation a use case just wrote or replayed, for its answer."""
    return _views(session, [operation], viewer_id=user_id, with_timeline=True)[0]


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

    The cost of a page does not grow with history: both sides of the visibility
    test have an index on (user, id), and the page reads ``limit + 1`` rows.
    """
    limit = max(1, min(limit, wallet.settings.activity_page_size_max))
    before_id = _cursor(cursor)
    conditions: list[object] = [_visible_to(user_id)]
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
    if filters.direction == "in":
        conditions.append(
            or_(
                and_(Operation.user_id == user_id, Operation.kind == "top_up"),
                and_(Operation.counterparty_user_id == user_id, Operation.kind == "send"),
            )
        )
    elif filters.direction == "out":
        conditions.append(
            and_(Operation.user_id == user_id, Operation.kind.in_(("send", "withdrawal")))
        )
    elif filters.direction == "exchange":
        conditions.append(Operation.kind == "convert")
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
        matching = select(User.id).where(
            or_(
                User.handle.ilike(pattern, escape="\\"),
                User.display_name.ilike(pattern, escape="\\"),
            )
        )
        conditions.append(
            or_(
                Operation.note.ilike(pattern, escape="\\"),
                and_(Operation.user_id == user_id, Operation.counterparty_user_id.in_(matching)),
                and_(Operation.counterparty_user_id == user_id, Operation.user_id.in_(matching)),
            )
        )
    rows = list(
        session.scalars(
            select(Operation).where(*conditions).order_by(Operation.id.desc()).limit(limit + 1)  # type: ignore[arg-type]
        )
    )
    more = len(rows) > limit
    items = _views(session, rows[:limit], viewer_id=user_id)
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
    return _views(session, rows, viewer_id=user_id)


def funding_sources(session: Session, *, user_id: int) -> list[SourceView]:
    return [
        _source_view(source)
        for source in session.scalars(
            select(FundingSource)
            .where(FundingSource.user_id == user_id, FundingSource.status == "active")
            .order_by(FundingSource.id)
        )
    ]


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
    """Requests made by or of the user, newest first; open ones past their time show expired."""
    query = select(MoneyRequest).where(
        or_(MoneyRequest.requester_id == user_id, MoneyRequest.payer_id == user_id)
    )
    if request_id is not None:
        query = query.where(MoneyRequest.id == request_id)
    rows = list(session.scalars(query.order_by(MoneyRequest.id.desc()).limit(limit)))
    if request_id is not None and not rows:
        raise MoneyRequestNotFound()
    others = {r.payer_id if r.requester_id == user_id else r.requester_id for r in rows}
    users = (
        {u.id: u for u in session.scalars(select(User).where(User.id.in_(others)))}
        if others
        else {}
    )
    references = dict(
        session.execute(
            select(Operation.id, Operation.reference).where(
                Operation.id.in_([r.operation_id for r in rows if r.operation_id is not None])
            )
        ).all()
    )
    views = []
    for row in rows:
        outgoing = row.requester_id == user_id
        other = users[row.payer_id if outgoing else row.requester_id]
        status = "expired" if row.status == "open" and row.expires_at <= now else row.status
        views.append(
            RequestView(
                id=row.id,
                direction="outgoing" if outgoing else "incoming",
                other=Party(other.id, other.handle, rules.mask_name(other.display_name)),
                asset=row.asset,
                amount_minor=row.amount_minor,
                note=row.note,
                status=status,
                expires_at=row.expires_at,
                created_at=row.created_at,
                operation_reference=references.get(row.operation_id) if row.operation_id else None,
            )
        )
    return views


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
            Operation.kind.in_(("send", "withdrawal")),
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
    users = (
        {u.id: u for u in session.scalars(select(User).where(User.id.in_([i for i, _ in top])))}
        if top
        else {}
    )
    return Spending(
        asset=asset,
        months=list(per_month.items()),
        counterparties=[
            (Party(i, users[i].handle, rules.mask_name(users[i].display_name)), amount)
            for i, amount in top
        ],
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
        .join(WalletAccount, WalletAccount.account_id == Account.id)
        .join(User, WalletAccount.owner == literal("user:") + cast(User.id, String))
        .where(WalletAccount.asset == asset, Account.kind == "wallet")
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
            available_minor=account.credits_posted - account.debits_posted - account.debits_pending,
        )
        for handle, account in rows
    ]
    return wallets, int(count), int(total)
