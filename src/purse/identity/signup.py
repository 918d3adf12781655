"""Signing up and confirming a phone or email with the code sent to it.

Signing up with a phone or email that already has an account answers as if it
worked and tells the owner instead, so the answer never reveals who has an account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.identity import rules
from purse.identity.codes import check_code, send_code
from purse.identity.context import (
    EMAIL_CONTEXT,
    PHONE_CONTEXT,
    Identity,
    Outcome,
    notify_user,
)
from purse.identity.errors import (
    CodeInvalid,
    CodeSendThrottled,
    ContactRequired,
    ContactTaken,
    HandleTaken,
    RoleInvalid,
)
from purse.identity.models import ROLES, User
from purse.identity.users import find_user
from purse.models import utc_now


@dataclass(frozen=True, slots=True)
class SignUpResult:
    """``user_id`` is None when the contact already had an account (told to its owner)."""

    user_id: int | None
    channels: tuple[str, ...]


def sign_up(
    session: Session,
    *,
    identity: Identity,
    handle: str,
    display_name: str,
    password: str,
    locale: str,
    actor: Actor,
    phone: str | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> SignUpResult:
    """Create an unverified account and send a code to each contact given."""
    now = now or utc_now()
    if not phone and not email:
        raise ContactRequired()
    handle = rules.normalize_handle(handle)
    display_name = rules.normalize_display_name(display_name)
    phone = rules.normalize_phone(phone) if phone else None
    email = rules.normalize_email(email) if email else None
    identity.policy.check(password, user_inputs=[handle, display_name, phone or "", email or ""])
    cipher = identity.cipher
    phone_lookup = cipher.lookup(phone, context=PHONE_CONTEXT) if phone else None
    email_lookup = cipher.lookup(email, context=EMAIL_CONTEXT) if email else None
    if session.scalar(select(User.id).where(User.handle == handle)) is not None:
        raise HandleTaken()
    channels = tuple(channel for channel, value in (("sms", phone), ("email", email)) if value)
    conditions = []
    if phone_lookup:
        conditions.append(User.phone_lookup == phone_lookup)
    if email_lookup:
        conditions.append(User.email_lookup == email_lookup)
    existing = session.scalars(select(User).where(or_(*conditions))).all()
    if existing:
        for owner in existing:
            notify_user(
                session,
                identity=identity,
                user=owner,
                template="signup_attempt_on_your_contact",
                data={},
                now=now,
            )
            record(
                session, kind="signup_contact_taken", actor=actor, subject_user_id=owner.id, now=now
            )
        return SignUpResult(user_id=None, channels=channels)
    user = User(
        handle=handle,
        display_name=display_name,
        locale=locale if locale in ("en", "zh-CN") else "en",
        role="user",
        status="active",
        phone_encrypted=cipher.encrypt(phone, context=PHONE_CONTEXT) if phone else None,
        phone_lookup=phone_lookup,
        email_encrypted=cipher.encrypt(email, context=EMAIL_CONTEXT) if email else None,
        email_lookup=email_lookup,
        password_hash=identity.hasher.hash(password),
        failed_login_count=0,
        kyc_level=0,
        created_at=now,
    )
    session.add(user)
    session.flush()
    record(
        session,
        kind="signup",
        actor=actor,
        subject_user_id=user.id,
        data={"channels": channels},
        now=now,
    )
    for channel in channels:
        send_code(
            session,
            identity=identity,
            user=user,
            purpose=f"verify_{channel}",
            channel=channel,
            now=now,
        )
    return SignUpResult(user_id=user.id, channels=channels)


def create_verified_user(
    session: Session,
    *,
    identity: Identity,
    handle: str,
    display_name: str,
    password: str,
    role: str,
    locale: str,
    actor: Actor,
    phone: str | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> int:
    """An operator creates an account whose contacts they vouch for (staff, test users)."""
    now = now or utc_now()
    if role not in ROLES:
        raise RoleInvalid(roles=", ".join(ROLES))
    result = sign_up(
        session,
        identity=identity,
        handle=handle,
        display_name=display_name,
        password=password,
        locale=locale,
        actor=actor,
        phone=phone,
        email=email,
        now=now,
    )
    if result.user_id is None:
        raise ContactTaken()
    user = session.get_one(User, result.user_id)
    user.role = role
    user.phone_verified_at = now if user.phone_lookup else None
    user.email_verified_at = now if user.email_lookup else None
    record(
        session,
        kind="role_changed",
        actor=actor,
        subject_user_id=user.id,
        data={"role": role},
        now=now,
    )
    return user.id


def verify_contact(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    channel: str,
    code: str,
    actor: Actor,
    now: datetime | None = None,
) -> Outcome:
    """Confirm a phone ("sms") or email with the code sent to it at sign-up."""
    now = now or utc_now()
    outcome = check_code(
        session,
        identity=identity,
        user_id=user_id,
        purpose=f"verify_{channel}",
        code=code,
        actor=actor,
        now=now,
    )
    if outcome.error is None:
        user = session.get_one(User, user_id)
        if channel == "sms":
            user.phone_verified_at = now
        else:
            user.email_verified_at = now
        record(
            session,
            kind="contact_verified",
            actor=actor,
            subject_user_id=user_id,
            data={"channel": channel},
            now=now,
        )
    return outcome


def request_verification_code(
    session: Session,
    *,
    identity: Identity,
    identifier: str,
    channel: str,
    now: datetime | None = None,
) -> None:
    """Send a new verification code, quietly doing nothing for unknown or throttled contacts.

    The answer is the same either way, so this cannot be used to find accounts.
    """
    user = find_user(session, identity=identity, identifier=identifier)
    if (
        user is None
        or rules.identifier_kind(identifier) != {"sms": "phone", "email": "email"}[channel]
    ):
        return
    try:
        send_code(
            session,
            identity=identity,
            user=user,
            purpose=f"verify_{channel}",
            channel=channel,
            now=now,
        )
    except CodeSendThrottled:
        return


def verify_identifier(
    session: Session,
    *,
    identity: Identity,
    identifier: str,
    channel: str,
    code: str,
    actor: Actor,
    now: datetime | None = None,
) -> Outcome:
    """Verify a contact named by itself; an unknown one fails like a wrong code."""
    user = find_user(session, identity=identity, identifier=identifier)
    if (
        user is None
        or rules.identifier_kind(identifier) != {"sms": "phone", "email": "email"}[channel]
    ):
        return Outcome(error=CodeInvalid())
    return verify_contact(
        session,
        identity=identity,
        user_id=user.id,
        channel=channel,
        code=code,
        actor=actor,
        now=now,
    )
