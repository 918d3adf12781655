"""A merchant's team: adding people by their handle, changing their role, removing them.

A merchant always keeps an owner. Two owners demoting or removing each other at the
same moment must not leave it with none, so every change to the team first locks the
merchant's row (``FOR UPDATE`` on PostgreSQL; SQLite's writer holds the only lock), and
counts the owners under that lock.

People are added by handle only, not by phone or email: the team page must not become a
way to find out whose phone number is whose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.identity import rules as identity_rules
from purse.identity.context import Identity, notify_user
from purse.identity.errors import HandleInvalid, UserNotFound
from purse.identity.models import User
from purse.identity.users import person
from purse.merchants import errors
from purse.merchants.models import Merchant, MerchantMember
from purse.merchants.rules import MemberRole
from purse.models import utc_now

_merchants = cast(Table, Merchant.__table__)
_members = cast(Table, MerchantMember.__table__)
_users = cast(Table, User.__table__)
_MEMBERS = select(
    _members.c.user_id,
    _users.c.handle,
    _users.c.display_name,
    _members.c.role,
    _members.c.created_at,
).join(_users, _users.c.id == _members.c.user_id)


@dataclass(frozen=True, slots=True)
class MemberRecord:
    user_id: int
    handle: str
    display_name: str
    role: str
    created_at: datetime


def members(session: Session, *, merchant_id: int) -> list[MemberRecord]:
    """The merchant's team, owners first, then by when they joined."""
    order = {role: index for index, role in enumerate(MemberRole)}
    rows = session.execute(
        _MEMBERS.where(_members.c.merchant_id == merchant_id).order_by(
            _members.c.created_at, _members.c.id
        )
    )
    found = [MemberRecord(**row._mapping) for row in rows]
    return sorted(found, key=lambda member: order[MemberRole(member.role)])


def add_member(
    session: Session,
    *,
    merchant_id: int,
    handle: str,
    role: MemberRole,
    actor: Actor,
    now: datetime | None = None,
) -> MemberRecord:
    """Add the person with ``handle`` to the team, as ``role``."""
    assert session.in_transaction()
    now = now or utc_now()
    _lock_merchant(session, merchant_id)
    if identity_rules.identifier_kind(handle) != "handle":
        raise UserNotFound()
    try:
        normalized = identity_rules.normalize_handle(handle)
    except HandleInvalid as error:  # a malformed handle names nobody
        raise UserNotFound() from error
    user = session.execute(
        select(_users.c.id, _users.c.status).where(_users.c.handle == normalized)
    ).first()
    if user is None or user.status != "active":
        raise UserNotFound()
    existing = session.execute(
        select(_members.c.id).where(
            _members.c.merchant_id == merchant_id, _members.c.user_id == user.id
        )
    ).first()
    if existing is not None:
        raise errors.MerchantMemberExists()
    session.execute(
        insert(_members).values(
            merchant_id=merchant_id, user_id=user.id, role=role.value, created_at=now
        )
    )
    record(
        session,
        kind="merchant_member_added",
        actor=actor,
        subject_user_id=user.id,
        data={"merchant_id": merchant_id, "role": role.value},
        now=now,
    )
    return _member(session, merchant_id=merchant_id, user_id=user.id)


def change_role(
    session: Session,
    *,
    merchant_id: int,
    user_id: int,
    role: MemberRole,
    actor: Actor,
    now: datetime | None = None,
) -> MemberRecord:
    """Give a member another role; the merchant's last owner stays an owner."""
    assert session.in_transaction()
    _lock_merchant(session, merchant_id)
    current = _member(session, merchant_id=merchant_id, user_id=user_id)
    if current.role == MemberRole.owner and role != MemberRole.owner:
        _keep_an_owner(session, merchant_id)
    session.execute(
        update(_members)
        .where(_members.c.merchant_id == merchant_id, _members.c.user_id == user_id)
        .values(role=role.value)
    )
    record(
        session,
        kind="merchant_member_role_changed",
        actor=actor,
        subject_user_id=user_id,
        data={"merchant_id": merchant_id, "from": current.role, "to": role.value},
        now=now,
    )
    return _member(session, merchant_id=merchant_id, user_id=user_id)


def remove_member(
    session: Session,
    *,
    merchant_id: int,
    user_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Take a member off the team; the merchant's last owner stays."""
    assert session.in_transaction()
    _lock_merchant(session, merchant_id)
    current = _member(session, merchant_id=merchant_id, user_id=user_id)
    if current.role == MemberRole.owner:
        _keep_an_owner(session, merchant_id)
    session.execute(
        delete(_members).where(_members.c.merchant_id == merchant_id, _members.c.user_id == user_id)
    )
    record(
        session,
        kind="merchant_member_removed",
        actor=actor,
        subject_user_id=user_id,
        data={"merchant_id": merchant_id, "role": current.role},
        now=now,
    )


def _lock_merchant(session: Session, merchant_id: int) -> None:
    query = select(_merchants.c.id).where(_merchants.c.id == merchant_id)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    if session.execute(query).first() is None:
        raise errors.MerchantNotFound()


def _keep_an_owner(session: Session, merchant_id: int) -> None:
    owners = session.execute(
        select(func.count()).where(
            _members.c.merchant_id == merchant_id, _members.c.role == MemberRole.owner.value
        )
    ).scalar_one()
    if owners <= 1:
        raise errors.MerchantOwnerRequired()


def _member(session: Session, *, merchant_id: int, user_id: int) -> MemberRecord:
    row = session.execute(
        _MEMBERS.where(_members.c.merchant_id == merchant_id, _members.c.user_id == user_id)
    ).first()
    if row is None:
        raise errors.MerchantMemberNotFound()
    return MemberRecord(**row._mapping)


def tell_team(
    session: Session,
    *,
    identity: Identity,
    merchant_id: int,
    template: str,
    data: dict[str, object],
    event_key: str,
    now: datetime,
) -> None:
    """Tell the merchant's owners and developers (a failing webhook endpoint, a payout)."""
    for member in members(session, merchant_id=merchant_id):
        if member.role in (MemberRole.owner, MemberRole.developer):
            notify_user(
                session,
                identity=identity,
                user=person(session, member.user_id),
                template=template,
                data=data,
                now=now,
                event_key=f"{event_key}:{member.user_id}",
            )
