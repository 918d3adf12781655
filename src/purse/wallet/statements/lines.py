"""What a statement says: opening balance, posted lines, totals and closing balance."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from purse.i18n import N_, translate
from purse.identity.models import User
from purse.identity.rules import mask_name
from purse.ledger import queries as ledger_queries
from purse.ledger.models import Transfer
from purse.money.assets import Asset
from purse.operations import kinds
from purse.operations.accounts import user_owner
from purse.operations.models import Operation, OperationAccount
from purse.wallet.context import Wallet
from purse.wallet.statements.requests import month_bounds

# A statement is built in memory; beyond this many lines it fails instead of exhausting it.
LINES_MAX = 50_000


# Operations and users are looked up by this many keys at a time.
LOOKUP_CHUNK_SIZE = 500


# Only these kinds change posted balances; a post_pending carries the amount posted.
POSTING_KINDS = ("posted", "post_pending")


# A transfer as read for a line: (id, created at, signed amount, reference, reversal of).
_RawLine = tuple[int, datetime, int, str | None, int | None]


@dataclass(frozen=True, slots=True)
class StatementLine:
    transfer_id: int
    at: datetime  # in the statement's time zone
    reference: str | None
    kind: str | None  # the operation's kind; None when no operation explains the transfer
    # An English message id, translated when rendered, and the values of its placeholders.
    label: str
    label_fields: tuple[tuple[str, str], ...]
    reversal: bool
    note: str | None
    amount_minor: int  # signed: money into the wallet is positive
    balance_minor: int  # the posted balance after this line

    def description(self, locale: str) -> str:
        text = translate(self.label, locale).format(**dict(self.label_fields))
        if self.reversal:
            text = translate("Reversal: {description}", locale).format(description=text)
        return text


@dataclass(frozen=True, slots=True)
class StatementSection:
    asset: Asset
    opening_minor: int
    lines: tuple[StatementLine, ...]
    in_minor: int  # the sum of the positive lines
    out_minor: int  # the sum of the negative lines, as a positive amount
    closing_minor: int


@dataclass(frozen=True, slots=True)
class StatementData:
    user_id: int
    handle: str
    month: str
    timezone: str
    sections: tuple[StatementSection, ...]

    @property
    def line_count(self) -> int:
        return sum(len(section.lines) for section in self.sections)


def statement_data(session: Session, *, wallet: Wallet, user_id: int, month: str) -> StatementData:
    """Opening balance, posted lines, totals and closing balance of each of the user's wallets.

    Run it in one read transaction: the balances and the lines must come from the
    same snapshot for the reconciliation below to hold while money keeps moving.
    """
    timezone = wallet.settings.timezone
    start, end = month_bounds(month, timezone)
    zone = ZoneInfo(timezone)
    user = session.get_one(User, user_id)
    accounts = session.execute(
        select(OperationAccount.asset, OperationAccount.account_id).where(
            OperationAccount.owner == user_owner(user_id)
        )
    ).all()
    order = {code: index for index, code in enumerate(wallet.settings.wallet_assets)}
    accounts = sorted(accounts, key=lambda row: (order.get(row.asset, len(order)), row.asset))

    raw: list[tuple[str, int, int, list[_RawLine]]] = []
    line_count = 0
    for asset_code, account_id in accounts:
        opening, closing = _balances_at(session, account_id=account_id, start=start, end=end)
        rows = _month_postings(session, account_id=account_id, start=start, end=end)
        line_count += len(rows)
        if line_count > LINES_MAX:
            raise ValueError(f"a statement may have at most {LINES_MAX} lines")
        lines: list[_RawLine] = [
            (
                row.id,
                row.created_at,
                row.amount_minor if row.credit_account_id == account_id else -row.amount_minor,
                row.reference,
                row.reversal_of,
            )
            for row in rows
        ]
        raw.append((asset_code, opening, closing, lines))

    operations = _operations(session, {line[3] for _, _, _, lines in raw for line in lines})
    parties = _parties(
        session,
        {
            other
            for operation in operations.values()
            if operation.kind == "send"
            for other in (operation.user_id, operation.counterparty_user_id)
            if other is not None and other != user_id
        },
    )

    sections = []
    for asset_code, opening, closing, lines in raw:
        balance = opening
        built = []
        for transfer_id, created_at, amount, reference, reversal_of in lines:
            balance += amount
            operation = operations.get(reference) if reference is not None else None
            label, fields = _label(operation, user_id=user_id, parties=parties)
            built.append(
                StatementLine(
                    transfer_id=transfer_id,
                    at=created_at.astimezone(zone),
                    reference=reference,
                    kind=operation.kind if operation is not None else None,
                    label=label,
                    label_fields=fields,
                    reversal=reversal_of is not None,
                    note=operation.note if operation is not None else None,
                    amount_minor=amount,
                    balance_minor=balance,
                )
            )
        in_minor = sum(line.amount_minor for line in built if line.amount_minor > 0)
        out_minor = -sum(line.amount_minor for line in built if line.amount_minor < 0)
        # The closing balance was summed by the database on its own; the lines must add up to it.
        assert balance == closing, (asset_code, opening, balance, closing)
        assert opening + in_minor - out_minor == closing
        sections.append(
            StatementSection(
                asset=wallet.assets.get(asset_code),
                opening_minor=opening,
                lines=tuple(built),
                in_minor=in_minor,
                out_minor=out_minor,
                closing_minor=closing,
            )
        )
    return StatementData(
        user_id=user_id,
        handle=user.handle,
        month=f"{start.year:04d}-{start.month:02d}",
        timezone=timezone,
        sections=tuple(sections),
    )


def _month_postings(
    session: Session, *, account_id: int, start: datetime, end: datetime
) -> list[Any]:
    """The account's postings from ``start`` to ``end``, in id (commit) order.

    Each side (money out, money in) is one range of its (account, created_at)
    index; a transfer never has the same account on both sides, so the two never
    overlap. They are ordered here rather than by the database: a month holds at
    most ``LINES_MAX`` lines, and the statement is built in memory anyway.
    """
    rows: list[Any] = []
    for side in (Transfer.debit_account_id, Transfer.credit_account_id):
        rows.extend(
            session.execute(
                select(
                    Transfer.id,
                    Transfer.created_at,
                    Transfer.credit_account_id,
                    Transfer.amount_minor,
                    Transfer.reference,
                    Transfer.reversal_of,
                )
                .where(
                    side == account_id,
                    Transfer.created_at >= start,
                    Transfer.created_at < end,
                    Transfer.kind.in_(POSTING_KINDS),
                )
                .limit(LINES_MAX + 1)
            )
        )
    return sorted(rows, key=lambda row: row.id)


def _balances_at(
    session: Session, *, account_id: int, start: datetime, end: datetime
) -> tuple[int, int]:
    """The posted balance of an account at ``start`` and at ``end``.

    From the ledger's month balance at ``start`` when there is one (the month job
    writes them once a month is closed): that balance plus what posted from its
    month start to ``start`` (nothing, once every month up to ``start`` is closed)
    and in the month itself, so an old month costs that month only. Without one
    (the current month, or before the job ran), counted back from the ledger's
    balance by what posted since ``start``. The ledger stays the only thing that
    keeps a balance; this reads it and its transfers, nothing more.
    """
    checkpoint = ledger_queries.month_balance_at(session, account_id=account_id, at=start)
    if checkpoint is None:
        return _counted_back(session, account_id=account_id, start=start, end=end)
    opening = closing = checkpoint.balance_minor
    for side, sign in ((Transfer.credit_account_id, 1), (Transfer.debit_account_id, -1)):
        before_start, before_end = session.execute(
            select(
                func.coalesce(
                    func.sum(case((Transfer.created_at < start, Transfer.amount_minor), else_=0)),
                    0,
                ),
                func.coalesce(func.sum(Transfer.amount_minor), 0),
            ).where(
                side == account_id,
                Transfer.created_at >= checkpoint.month_start,
                Transfer.created_at < end,
                Transfer.kind.in_(POSTING_KINDS),
            )
        ).one()
        opening += sign * int(before_start)
        closing += sign * int(before_end)
    return opening, closing


def _counted_back(
    session: Session, *, account_id: int, start: datetime, end: datetime
) -> tuple[int, int]:
    """``_balances_at`` from the ledger's balance, less what posted since ``start``:
    the cost is that of the month and of everything after it."""
    balance = ledger_queries.get_account(session, account_id=account_id).balance_minor
    since_start = since_end = 0
    for side, sign in ((Transfer.credit_account_id, 1), (Transfer.debit_account_id, -1)):
        total, after_end = session.execute(
            select(
                func.coalesce(func.sum(Transfer.amount_minor), 0),
                func.coalesce(
                    func.sum(case((Transfer.created_at >= end, Transfer.amount_minor), else_=0)), 0
                ),
            ).where(
                side == account_id,
                Transfer.created_at >= start,
                Transfer.kind.in_(POSTING_KINDS),
            )
        ).one()
        since_start += sign * int(total)
        since_end += sign * int(after_end)
    return balance - since_start, balance - since_end


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    ordered = sorted(values)
    for index in range(0, len(ordered), LOOKUP_CHUNK_SIZE):
        yield ordered[index : index + LOOKUP_CHUNK_SIZE]


def _operations(session: Session, references: set[str | None]) -> dict[str, Operation]:
    found: dict[str, Operation] = {}
    for chunk in _chunks(reference for reference in references if reference is not None):
        for operation in session.scalars(select(Operation).where(Operation.reference.in_(chunk))):
            found[operation.reference] = operation
    return found


def _parties(session: Session, user_ids: set[int]) -> dict[int, tuple[str, str]]:
    """(masked name, handle) of each user: enough to recognise them, not to learn who they are."""
    found: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(user_ids):
        for other in session.scalars(select(User).where(User.id.in_(chunk))):
            found[other.id] = (mask_name(other.display_name), other.handle)
    return found


def _label(
    operation: Operation | None, *, user_id: int, parties: dict[int, tuple[str, str]]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    if operation is None:
        return N_("Adjustment"), ()
    if operation.kind == "top_up":
        return N_("Top-up"), ()
    if operation.kind == "withdrawal":
        return N_("Withdrawal"), ()
    if operation.kind == "convert":
        return N_("Converted {from_asset} to {to_asset} at {rate}"), (
            ("from_asset", operation.asset),
            ("to_asset", operation.to_asset or ""),
            ("rate", operation.rate or ""),
        )
    if operation.kind != "send":  # a kind another domain registered: a payment, a refund
        return kinds.get(operation.kind).label, ()
    sent = operation.user_id == user_id
    other = operation.counterparty_user_id if sent else operation.user_id
    assert other is not None
    name, handle = parties[other]
    label = N_("Sent to {name} (@{handle})") if sent else N_("Received from {name} (@{handle})")
    return label, (("name", name), ("handle", handle))
