"""Reads of the ledger: accounts and transfers as plain records.

Nothing here writes. The records are what the rest of purse sees of the ledger's
rows; :mod:`purse.ledger.service` returns them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.orm import Session

from purse.ledger import errors
from purse.ledger.models import Account, Hold, MonthBalance, Transfer
from purse.ledger.rules import available_minor

_accounts = cast(Table, Account.__table__)
_transfers = cast(Table, Transfer.__table__)
_months = cast(Table, MonthBalance.__table__)
_holds = cast(Table, Hold.__table__)


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    asset: str
    owner_kind: str
    owner_id: str | None
    kind: str
    debits_must_not_exceed_credits: bool
    status: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    created_at: datetime

    @property
    def balance_minor(self) -> int:
        """Posted credits less posted debits: the money that is in the account."""
        return self.credits_posted - self.debits_posted

    @property
    def available_minor(self) -> int:
        """What may still be spent: the balance less money held for pending debits."""
        return available_minor(
            credits_posted=self.credits_posted,
            debits_posted=self.debits_posted,
            debits_pending=self.debits_pending,
        )


@dataclass(frozen=True, slots=True)
class TransferRecord:
    id: int
    group_id: int
    kind: str
    debit_account_id: int
    credit_account_id: int
    asset: str
    amount_minor: int
    pending_id: int | None
    expires_at: datetime | None
    reversal_of: int | None
    reason_code: str
    reference: str | None
    initiator_kind: str
    initiator_id: str
    authenticated_by: str
    created_at: datetime
    # Its link in the hash chain and its place there, once sealed (purse.ledger.sealer).
    hash: str | None
    chain_seq: int | None


@dataclass(frozen=True, slots=True)
class MonthBalanceRecord:
    """An account's posted totals dated before ``month_start`` (see purse.ledger.checkpoints)."""

    account_id: int
    month_start: datetime
    debits_posted: int
    credits_posted: int

    @property
    def balance_minor(self) -> int:
        return self.credits_posted - self.debits_posted


_ACCOUNT = select(_accounts).where(_accounts.c.id == bindparam("account_id"))  # built once


def get_account(session: Session, *, account_id: int) -> AccountRecord:
    """One account, or ``account_not_found``."""
    row = session.connection().execute(_ACCOUNT, {"account_id": account_id}).first()
    if row is None:
        raise errors.AccountNotFound()
    return AccountRecord(**row._asdict())


def get_accounts(session: Session, *, account_ids: Iterable[int]) -> dict[int, AccountRecord]:
    """The accounts among ``account_ids`` that exist, by id."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    rows = session.connection().execute(select(_accounts).where(_accounts.c.id.in_(ids)))
    return {row.id: AccountRecord(**row._asdict()) for row in rows}


def get_transfer(session: Session, *, transfer_id: int) -> TransferRecord | None:
    row = (
        session.connection()
        .execute(select(_transfers).where(_transfers.c.id == transfer_id))
        .first()
    )
    return TransferRecord(**row._asdict()) if row is not None else None


def hold_status(session: Session, *, transfer_id: int) -> str | None:
    """Where the hold made by pending transfer ``transfer_id`` stands (None: no such hold)."""
    return (
        session.connection()
        .execute(select(_holds.c.status).where(_holds.c.transfer_id == transfer_id))
        .scalar()
    )


def load_groups(
    connection: Connection, group_ids: Iterable[int]
) -> dict[int, tuple[TransferRecord, ...]]:
    """The transfers of each group, in id order (for replaying an idempotent request)."""
    ids = sorted(set(group_ids))
    if not ids:
        return {}
    grouped: dict[int, list[TransferRecord]] = {i: [] for i in ids}
    rows = connection.execute(
        select(_transfers).where(_transfers.c.group_id.in_(ids)).order_by(_transfers.c.id)
    )
    for row in rows:
        grouped[row.group_id].append(TransferRecord(**row._asdict()))
    return {group_id: tuple(records) for group_id, records in grouped.items()}


# The newest month balance at or before an instant: one step back along the primary key.
_MONTH_BALANCE = (
    select(_months)
    .where(
        _months.c.account_id == bindparam("account_id"),
        _months.c.month_start <= bindparam("at", type_=_months.c.month_start.type),
    )
    .order_by(_months.c.month_start.desc())
    .limit(1)
)


def month_balance_at(
    session: Session, *, account_id: int, at: datetime
) -> MonthBalanceRecord | None:
    """The account's newest month balance at or before ``at``, if the month job wrote one.

    Its postings from that month start to ``at`` still need adding: none, if the
    month job has closed every month up to ``at`` (an account gets a row only for a
    month it moved in), otherwise those of the months not closed yet.
    """
    row = session.connection().execute(_MONTH_BALANCE, {"account_id": account_id, "at": at}).first()
    return MonthBalanceRecord(**row._asdict()) if row is not None else None
