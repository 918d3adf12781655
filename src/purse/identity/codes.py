"""One-time codes: sent to a phone or email, single use, short-lived, with few tries."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.identity.context import (
    Identity,
    Outcome,
    contact,
)
from purse.identity.errors import (
    CodeAttemptsExceeded,
    CodeInvalid,
    CodeSendThrottled,
    ContactRequired,
)
from purse.identity.models import OneTimeCode, User
from purse.models import utc_now
from purse.notify.service import enqueue
from purse.settings import Settings


def send_code(
    session: Session,
    *,
    identity: Identity,
    user: User,
    purpose: str,
    channel: str,
    recipient: str | None = None,
    now: datetime | None = None,
) -> None:
    """Send a fresh 6-digit code; the previous one stops working.

    A new code does not give new tries: it takes over the wrong-attempt count of
    the code it replaces while that one was still valid.
    """
    now = now or utc_now()
    settings = identity.settings
    recipient = recipient or contact(identity, user, channel)
    if recipient is None:
        raise ContactRequired()
    latest = session.scalars(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose)
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    ).first()
    attempts = 0
    if latest is not None:
        wait = latest.created_at + timedelta(seconds=settings.code_resend_interval_seconds) - now
        if wait.total_seconds() > 0:
            raise CodeSendThrottled(retry_after_seconds=int(wait.total_seconds() + 0.999))
        if latest.expires_at > now:
            attempts = latest.attempts
        if latest.used_at is None:
            latest.used_at = now  # replaced: it no longer works
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(
        OneTimeCode(
            user_id=user.id,
            purpose=purpose,
            channel=channel,
            code_hash=identity.code_hash(user_id=user.id, purpose=purpose, code=code),
            attempts=attempts,
            expires_at=now + timedelta(seconds=settings.code_ttl_seconds),
            created_at=now,
        )
    )
    enqueue(
        session,
        cipher=identity.cipher,
        user_id=user.id,
        channel=channel,
        recipient=recipient,
        template=f"code_{purpose}",
        locale=user.locale,
        data={"code": code, "minutes": code_minutes(settings)},
        now=now,
    )


def code_minutes(settings: Settings) -> int:
    """How long a code works, in whole minutes as messages say it (at least one)."""
    return max(1, settings.code_ttl_seconds // 60)


def check_code(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    purpose: str,
    code: str,
    actor: Actor,
    now: datetime | None = None,
) -> Outcome:
    """Use the current code for ``purpose``: single use, 10 minutes, at most 5 tries."""
    now = now or utc_now()
    current = session.scalars(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user_id, OneTimeCode.purpose == purpose)
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    ).first()
    if current is None or current.used_at is not None or current.expires_at <= now:
        return Outcome(error=CodeInvalid())
    if current.attempts >= identity.settings.code_attempts_max:
        return Outcome(error=CodeAttemptsExceeded())
    expected = identity.code_hash(user_id=user_id, purpose=purpose, code=code.strip())
    if not hmac.compare_digest(expected, current.code_hash):
        current.attempts += 1
        record(
            session,
            kind="code_failed",
            actor=actor,
            subject_user_id=user_id,
            data={"purpose": purpose, "attempts": current.attempts},
            now=now,
        )
        if current.attempts >= identity.settings.code_attempts_max:
            return Outcome(error=CodeAttemptsExceeded())
        return Outcome(error=CodeInvalid())
    current.used_at = now
    return Outcome(user_id=user_id)
