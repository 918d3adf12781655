"""Changing the password: by a reset code sent to a confirmed contact, or signed in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.identity.codes import check_code, send_code
from purse.identity.context import (
    Identity,
    Outcome,
    contact,
    notify_user,
)
from purse.identity.errors import (
    CodeInvalid,
    CodeSendThrottled,
    SecondFactorInvalid,
    SecondFactorRequired,
)
from purse.identity.models import User
from purse.identity.sessions import end_all_sessions
from purse.identity.twofactor import check_second_factor
from purse.identity.users import verified_contact_user
from purse.models import utc_now


def request_password_reset(
    session: Session,
    *,
    identity: Identity,
    identifier: str,
    channel: str,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Send a reset code to a verified contact; unknown or throttled contacts are a quiet no-op."""
    now = now or utc_now()
    user = verified_contact_user(session, identity=identity, identifier=identifier, channel=channel)
    if user is None:
        return
    try:
        send_code(
            session,
            identity=identity,
            user=user,
            purpose="reset_password",
            channel=channel,
            now=now,
        )
    except CodeSendThrottled:
        return
    record(
        session,
        kind="password_reset_requested",
        actor=actor,
        subject_user_id=user.id,
        data={"channel": channel},
        now=now,
    )


def reset_password(
    session: Session,
    *,
    identity: Identity,
    identifier: str,
    channel: str,
    code: str,
    new_password: str,
    actor: Actor,
    second_factor: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Set a new password with a reset code (and the second factor, when 2FA is on).

    The new password is checked first, so a refused one does not use up the code;
    a wrong second factor does (ask for a new code).
    On success the account is unlocked, every session ends, and the user is told on
    every channel.
    """
    now = now or utc_now()
    user = verified_contact_user(session, identity=identity, identifier=identifier, channel=channel)
    if user is None:
        return Outcome(error=CodeInvalid())
    phone = contact(identity, user, "sms") or ""
    email = contact(identity, user, "email") or ""
    identity.policy.check(new_password, user_inputs=[user.handle, user.display_name, phone, email])
    # A reset never gets around 2FA: the code proves the contact, not the account.
    # The second factor is checked only after the (counted) reset code, and a wrong one
    # counts toward the account's lockout, so this is no way to guess TOTP codes.
    if user.totp_enabled_at is not None and not second_factor:
        return Outcome(error=SecondFactorRequired())
    outcome = check_code(
        session,
        identity=identity,
        user_id=user.id,
        purpose="reset_password",
        code=code,
        actor=actor,
        now=now,
    )
    if outcome.error is not None:
        return outcome
    if user.totp_enabled_at is not None and not check_second_factor(
        session, identity=identity, user=user, code=second_factor or "", actor=actor, now=now
    ):
        user.failed_login_count += 1
        user.last_failed_login_at = now
        record(
            session,
            kind="login_failed",
            actor=actor,
            subject_user_id=user.id,
            data={"reason": "wrong_second_factor_at_reset"},
            now=now,
        )
        return Outcome(error=SecondFactorInvalid())
    user.password_hash = identity.hasher.hash(new_password)
    user.failed_login_count, user.last_failed_login_at, user.locked_until = 0, None, None
    end_all_sessions(session, user_id=user.id, actor=actor, reason="password_reset", now=now)
    record(session, kind="password_reset", actor=actor, subject_user_id=user.id, now=now)
    notify_user(
        session, identity=identity, user=user, template="password_changed", data={}, now=now
    )
    return Outcome(user_id=user.id)


def change_password(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    keep_session_id: int | None,
    new_password: str,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """A signed-in user sets a new password (after a step-up); other devices are signed out."""
    now = now or utc_now()
    user = session.get_one(User, user_id)
    phone = contact(identity, user, "sms") or ""
    email = contact(identity, user, "email") or ""
    identity.policy.check(new_password, user_inputs=[user.handle, user.display_name, phone, email])
    user.password_hash = identity.hasher.hash(new_password)
    end_all_sessions(
        session,
        user_id=user_id,
        actor=actor,
        reason="password_changed",
        except_session_id=keep_session_id,
        now=now,
    )
    record(session, kind="password_changed", actor=actor, subject_user_id=user_id, now=now)
    notify_user(session, identity=identity, user=user, template="password_changed", now=now)
