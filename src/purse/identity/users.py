"""Finding accounts, and what a user or an admin reads and changes of one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.errors import PurseError
from purse.identity import rules
from purse.identity.context import (
    EMAIL_CONTEXT,
    PHONE_CONTEXT,
    Identity,
    Person,
    contact,
)
from purse.identity.errors import (
    RoleInvalid,
    UserNotFound,
)
from purse.identity.models import ROLES, User
from purse.prepared import Prepared

# The columns a login identifier is looked up by (each unique), and what a money use case
# reads of a person. Built once: every payment looks up its recipient.
_LOOKUP_COLUMNS = ("handle", "phone_lookup", "email_lookup")
_users = cast(Table, User.__table__)
_USER_BY = {
    column: select(User).where(_users.c[column] == bindparam("value")) for column in _LOOKUP_COLUMNS
}
_PERSON_COLUMNS = tuple(_users.c[field.name] for field in fields(Person))
_PERSON_BY = {
    column: Prepared(select(*_PERSON_COLUMNS).where(_users.c[column] == bindparam("value")))
    for column in _LOOKUP_COLUMNS
}
_PEOPLE = Prepared(
    select(*_PERSON_COLUMNS).where(_users.c.id.in_(bindparam("ids", expanding=True)))
)
_LOCK_PERSON = Prepared(
    select(*_PERSON_COLUMNS)
    .where(_users.c.id == bindparam("value"))
    .with_for_update(key_share=True)
)
# session.info: the people this transaction has read, by id.
_READ = "purse.identity.people"


def _lookup(identity: Identity, identifier: str) -> tuple[str, str] | None:
    """The column a login identifier (phone, email or handle) is found by, and its value."""
    kind = rules.identifier_kind(identifier)
    try:
        if kind == "phone":
            phone = rules.normalize_phone(identifier)
            return "phone_lookup", identity.cipher.lookup(phone, context=PHONE_CONTEXT)
        if kind == "email":
            email = rules.normalize_email(identifier)
            return "email_lookup", identity.cipher.lookup(email, context=EMAIL_CONTEXT)
        return "handle", rules.normalize_handle(identifier)
    except PurseError:
        return None  # malformed: no account, answered like any unknown one


def find_user(session: Session, *, identity: Identity, identifier: str) -> User | None:
    """The account a login identifier (phone, email or handle) names, if any."""
    found = _lookup(identity, identifier)
    if found is None:
        return None
    column, value = found
    return session.scalars(_USER_BY[column], {"value": value}).first()


def find_person(session: Session, *, identity: Identity, identifier: str) -> Person | None:
    """:func:`find_user`, read as a :class:`Person`."""
    found = _lookup(identity, identifier)
    if found is None:
        return None
    column, value = found
    row = _PERSON_BY[column].first(session, {"value": value})
    return _remember(session, row) if row is not None else None


def person(session: Session, user_id: int, *, lock: bool = False) -> Person:
    """The user ``user_id`` as a :class:`Person`, read once per transaction.

    ``lock`` takes the row ``FOR NO KEY UPDATE`` (see
    :func:`purse.operations.service.lock_user`), and so always reads it.
    """
    if not lock:
        return people(session, {user_id})[user_id]
    row = _LOCK_PERSON.first(session, {"value": user_id})
    if row is None:
        raise UserNotFound()
    return _remember(session, row)


def people(session: Session, user_ids: Iterable[int]) -> dict[int, Person]:
    """The users ``user_ids`` as people (those that exist), each read once per transaction."""
    read: dict[int, Person] = session.info.setdefault(_READ, {})
    wanted = set(user_ids)
    missing = wanted - read.keys()
    if missing:
        for row in _PEOPLE.all(session, {"ids": sorted(missing)}):
            _remember(session, row)
    return {user_id: read[user_id] for user_id in wanted if user_id in read}


def _remember(session: Session, row: Row[Any] | Any) -> Person:
    found = Person(**row._asdict())
    session.info.setdefault(_READ, {})[found.id] = found
    return found


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
