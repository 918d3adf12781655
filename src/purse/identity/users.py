"""Finding accounts, and what a user or an admin reads and changes of one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.errors import PurseError
from purse.identity import rules
from purse.identity.context import (
    EMAIL_CONTEXT,
    PHONE_CONTEXT,
    Identity,
    contact,
)
from purse.identity.errors import (
    RoleInvalid,
    UserNotFound,
)
from purse.identity.models import ROLES, User

_BY_HANDLE = select(User).where(User.handle == bindparam("handle"))  # built once: every send


def find_user(session: Session, *, identity: Identity, identifier: str) -> User | None:
    """The account a login identifier (phone, email or handle) names, if any."""
    kind = rules.identifier_kind(identifier)
    try:
        if kind == "phone":
            lookup = identity.cipher.lookup(
                rules.normalize_phone(identifier), context=PHONE_CONTEXT
            )
            return session.scalars(select(User).where(User.phone_lookup == lookup)).first()
        if kind == "email":
            lookup = identity.cipher.lookup(
                rules.normalize_email(identifier), context=EMAIL_CONTEXT
            )
            return session.scalars(select(User).where(User.email_lookup == lookup)).first()
        return session.scalars(_BY_HANDLE, {"handle": rules.normalize_handle(identifier)}).first()
    except PurseError:
        return None  # malformed: no account, answered like any unknown one


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    handle: str
    display_name: str
    locale: str
    role: str
    phone_masked: str | None
    email_masked: str | None
    phone_verified: bool
    email_verified: bool
    two_factor: bool


def profile(session: Session, *, identity: Identity, user_id: int) -> Profile:
    user = session.get_one(User, user_id)
    phone = contact(identity, user, "sms")
    email = contact(identity, user, "email")
    return Profile(
        id=user.id,
        handle=user.handle,
        display_name=user.display_name,
        locale=user.locale,
        role=user.role,
        phone_masked=rules.mask_phone(phone) if phone else None,
        email_masked=rules.mask_email(email) if email else None,
        phone_verified=user.phone_verified_at is not None,
        email_verified=user.email_verified_at is not None,
        two_factor=user.totp_enabled_at is not None,
    )


def change_role(
    session: Session, *, user_id: int, role: str, actor: Actor, now: datetime | None = None
) -> None:
    """An admin gives a user another role; the change is audited."""
    if role not in ROLES:
        raise RoleInvalid(roles=", ".join(ROLES))
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    previous = user.role
    user.role = role
    record(
        session,
        kind="role_changed",
        actor=actor,
        subject_user_id=user_id,
        data={"from": previous, "to": role},
        now=now,
    )


def verified_contact_user(
    session: Session, *, identity: Identity, identifier: str, channel: str
) -> User | None:
    """The user whose *verified* phone or email ``identifier`` is (and matches ``channel``)."""
    if rules.identifier_kind(identifier) != {"sms": "phone", "email": "email"}.get(channel):
        return None
    user = find_user(session, identity=identity, identifier=identifier)
    if user is None:
        return None
    verified = user.phone_verified_at if channel == "sms" else user.email_verified_at
    return user if verified is not None else None
