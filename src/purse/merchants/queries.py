"""Reads of merchants, as plain records, and the access helper every route goes through.

:func:`merchant_for_member` is the only way to load a merchant on someone's behalf:
a merchant the person does not work for is "not found", whatever its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import RowMapping, Table, select
from sqlalchemy.orm import Session

from purse.ledger import queries as ledger_queries
from purse.merchants import errors
from purse.merchants.models import Merchant, MerchantApiKey, MerchantMember
from purse.merchants.rules import role_allows, settlement_owner
from purse.operations.models import OperationAccount

_merchants = cast(Table, Merchant.__table__)
_members = cast(Table, MerchantMember.__table__)
_keys = cast(Table, MerchantApiKey.__table__)


@dataclass(frozen=True, slots=True)
class MerchantRecord:
    id: int
    name_en: str
    name_zh: str
    logo_initial: str
    status: str
    created_at: datetime
    capture_requires_fulfilment: bool

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


@dataclass(frozen=True, slots=True)
class Membership:
    """A merchant as one of its members sees it, with their role there."""

    merchant: MerchantRecord
    role: str


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    merchant_id: int
    mode: str
    name: str
    scopes: tuple[str, ...]
    last4: str
    created_by_user_id: int
    created_at: datetime
    last_used_at: datetime | None
    ends_at: datetime | None
    rolled_to_id: int | None

    def works_at(self, now: datetime) -> bool:
        return self.ends_at is None or now < self.ends_at


_MERCHANT_COLUMNS = (
    _merchants.c.id,
    _merchants.c.name_en,
    _merchants.c.name_zh,
    _merchants.c.logo_initial,
    _merchants.c.status,
    _merchants.c.created_at,
    _merchants.c.capture_requires_fulfilment,
)


def merchant_for_member(
    session: Session, *, user_id: int, merchant_id: int, permission: str
) -> Membership:
    """The merchant ``user_id`` works for, if their role there grants ``permission``.

    Not a member: ``merchant_not_found``, as for a merchant that does not exist.
    A member whose role does not allow it: ``merchant_permission_denied``.
    """
    row = session.execute(
        select(*_MERCHANT_COLUMNS, _members.c.role)
        .join(_members, _members.c.merchant_id == _merchants.c.id)
        .where(_merchants.c.id == merchant_id, _members.c.user_id == user_id)
    ).first()
    if row is None:
        raise errors.MerchantNotFound()
    if not role_allows(row.role, permission):
        raise errors.MerchantPermissionDenied()
    return Membership(merchant=_merchant(row._mapping), role=row.role)


def memberships(session: Session, *, user_id: int) -> list[Membership]:
    """The merchants ``user_id`` works for, oldest first."""
    rows = session.execute(
        select(*_MERCHANT_COLUMNS, _members.c.role)
        .join(_members, _members.c.merchant_id == _merchants.c.id)
        .where(_members.c.user_id == user_id)
        .order_by(_merchants.c.id)
    )
    return [Membership(merchant=_merchant(row._mapping), role=row.role) for row in rows]


def merchant(session: Session, *, merchant_id: int) -> MerchantRecord:
    """A merchant by id, for a caller that has been authorised for it already (its key)."""
    row = session.execute(select(*_MERCHANT_COLUMNS).where(_merchants.c.id == merchant_id)).first()
    if row is None:
        raise errors.MerchantNotFound()
    return _merchant(row._mapping)


def api_keys(session: Session, *, merchant_id: int) -> list[ApiKeyRecord]:
    """The merchant's keys, newest first, ended ones included (their history)."""
    rows = session.execute(
        select(_keys)
        .where(_keys.c.merchant_id == merchant_id)
        .order_by(_keys.c.created_at.desc(), _keys.c.id.desc())
    )
    return [api_key_record(row._mapping) for row in rows]


def api_key(session: Session, *, merchant_id: int, key_id: int) -> ApiKeyRecord:
    """One of the merchant's keys; another merchant's key is "not found"."""
    row = session.execute(
        select(_keys).where(_keys.c.id == key_id, _keys.c.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise errors.ApiKeyNotFound()
    return api_key_record(row._mapping)


def api_key_record(row: RowMapping) -> ApiKeyRecord:
    values = dict(row)
    values.pop("secret_lookup")
    values["scopes"] = tuple(values["scopes"].split())
    return ApiKeyRecord(**values)


def _merchant(row: RowMapping) -> MerchantRecord:
    return MerchantRecord(**{column.name: row[column.name] for column in _MERCHANT_COLUMNS})


@dataclass(frozen=True, slots=True)
class SettlementBalance:
    """A merchant's money in one currency and mode: what it has (captured, less refunds and
    payouts), and what customers' approvals hold for it (not its money until captured)."""

    asset: str
    available_minor: int
    held_for_you_minor: int


def settlement_balances(
    session: Session, *, merchant_id: int, mode: str
) -> list[SettlementBalance]:
    """The merchant's settlement accounts in ``mode``, one per currency it was paid in."""
    owner = settlement_owner(merchant_id, mode)
    rows = session.execute(
        select(OperationAccount.account_id).where(OperationAccount.owner == owner)
    ).scalars()
    accounts = ledger_queries.get_accounts(session, account_ids=list(rows))
    return [
        SettlementBalance(
            asset=account.asset,
            available_minor=account.available_minor,
            held_for_you_minor=account.credits_pending,
        )
        for account in sorted(accounts.values(), key=lambda found: found.asset)
    ]
