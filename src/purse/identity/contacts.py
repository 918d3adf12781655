"""Changing the phone or email of an account, confirmed by a code sent to the new one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
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
    ContactTaken,
)
from purse.identity.models import User
from purse.models import utc_now

PENDING_CONTACT_CONTEXT = "identity_users.pending_contact"


def request_contact_change(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    channel: str,
    value: str,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Send a code to a new phone ("sms") or email; it replaces the old one once confirmed.

    A contact that belongs to another account gets no code and its owner is told;
    the answer is the same, so this cannot be used to find accounts.
    """
    now = now or utc_now()
    normalized = rules.normalize_phone(value) if channel == "sms" else rules.normalize_email(value)
    context = PHONE_CONTEXT if channel == "sms" else EMAIL_CONTEXT
    lookup = identity.cipher.lookup(normalized, context=context)
    column = User.phone_lookup if channel == "sms" else User.email_lookup
    owner = session.scalars(select(User).where(column == lookup)).first()
    user = session.get_one(User, user_id)
    if owner is not None:
        if owner.id != user_id:
            notify_user(
                session, identity=identity, user=owner, template="contact_change_attempt", now=now
            )
        record(
            session,
            kind="contact_change_refused",
            actor=actor,
            subject_user_id=user_id,
            data={"channel": channel},
            now=now,
        )
        return
    user.pending_contact_channel = channel
    user.pending_contact_encrypted = identity.cipher.encrypt(
        normalized, context=PENDING_CONTACT_CONTEXT
    )
    send_code(
        session,
        identity=identity,
        user=user,
        purpose=f"change_{channel}",
        channel=channel,
        recipient=normalized,
        now=now,
    )
    record(
        session,
        kind="contact_change_requested",
        actor=actor,
        subject_user_id=user_id,
        data={"channel": channel},
        now=now,
    )


def confirm_contact_change(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    channel: str,
    code: str,
    actor: Actor,
    now: datetime | None = None,
) -> Outcome:
    """Replace the phone or email with the pending one; the old contact is told."""
    now = now or utc_now()
    user = session.get_one(User, user_id)
    if user.pending_contact_channel != channel or user.pending_contact_encrypted is None:
        return Outcome(error=CodeInvalid())
    outcome = check_code(
        session,
        identity=identity,
        user_id=user_id,
        purpose=f"change_{channel}",
        code=code,
        actor=actor,
        now=now,
    )
    if outcome.error is not None:
        return outcome
    new_value = identity.cipher.decrypt(
        user.pending_contact_encrypted, context=PENDING_CONTACT_CONTEXT
    )
    context = PHONE_CONTEXT if channel == "sms" else EMAIL_CONTEXT
    lookup = identity.cipher.lookup(new_value, context=context)
    column = User.phone_lookup if channel == "sms" else User.email_lookup
    if (
        session.scalars(select(User.id).where(column == lookup, User.id != user_id)).first()
        is not None
    ):
        raise ContactTaken()  # taken by someone else meanwhile: nothing changes
    notify_user(
        session, identity=identity, user=user, template=f"contact_changed_{channel}", now=now
    )
    encrypted = identity.cipher.encrypt(new_value, context=context)
    if channel == "sms":
        user.phone_encrypted, user.phone_lookup, user.phone_verified_at = encrypted, lookup, now
    else:
        user.email_encrypted, user.email_lookup, user.email_verified_at = encrypted, lookup, now
    user.pending_contact_channel = user.pending_contact_encrypted = None
    record(
        session,
        kind="contact_changed",
        actor=actor,
        subject_user_id=user_id,
        data={"channel": channel},
        now=now,
    )
    return Outcome(user_id=user_id)
