"""Signing in: the password and second factor, growing delays and lockout, step-up.

Security counters (failed logins) must be kept even when the attempt fails, so
these use cases do not raise on a refused attempt: they return an
:class:`~purse.identity.context.Outcome` whose error the entrypoint raises
*after* the transaction has committed the counter.

Answers never reveal whether an account exists: an unknown login identifier is
checked against a dummy hash and counted like a known one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.errors import PurseError
from purse.identity import rules
from purse.identity.context import (
    Identity,
    Outcome,
    notify_user,
)
from purse.identity.errors import (
    InvalidCredentials,
    LoginThrottled,
    SecondFactorInvalid,
    SecondFactorRequired,
)
from purse.identity.models import Session as SessionRow
from purse.identity.models import User
from purse.identity.sessions import Issued, device_of, start_session
from purse.identity.throttle import counter
from purse.identity.twofactor import check_second_factor
from purse.identity.users import find_user
from purse.models import utc_now


def login(
    session: Session,
    *,
    identity: Identity,
    identifier: str,
    password: str,
    actor: Actor,
    second_factor: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Check a sign-in (password, and the second factor when 2FA is on); count failures.

    Failures are counted per account and per client address. After
    ``login_delay_after_failures`` consecutive failures each attempt must wait
    longer (1, 2, 4 ... seconds); after ``login_failures_max`` the account is locked
    for ``login_lockout_seconds`` and its owner is told on every channel. A wrong
    second factor counts like a wrong password. An unknown identifier gets the
    same delays (counted under its keyed hash), so answers do not tell which
    accounts exist.
    """
    now = now or utc_now()
    settings = identity.settings
    address = counter(
        session,
        f"address:{actor.address or 'unknown'}",
        now=now,
        window_seconds=settings.address_window_seconds,
    )
    if address.failures >= settings.address_failures_max:
        window_end = address.window_started_at + timedelta(seconds=settings.address_window_seconds)
        return Outcome(
            error=LoginThrottled(retry_after_seconds=int((window_end - now).total_seconds()) + 1)
        )

    user = find_user(session, identity=identity, identifier=identifier)
    if user is None:
        unknown_key = "unknown:" + identity.cipher.lookup(
            identifier.strip().casefold(), context="login"
        )
        unknown = counter(
            session, unknown_key[:64], now=now, window_seconds=settings.login_lockout_seconds
        )
        last = unknown.window_started_at if unknown.failures else None
        wait = rules.retry_after_seconds(
            unknown.failures, last, now, delay_after_failures=settings.login_delay_after_failures
        )
        if wait and unknown.failures < settings.login_failures_max:
            return Outcome(error=LoginThrottled(retry_after_seconds=wait))
        identity.hasher.verify(None, password)  # the same work as for a real account
        address.failures += 1
        unknown.failures += 1
        unknown.window_started_at = now
        record(
            session,
            kind="login_failed",
            actor=actor,
            data={"reason": "unknown_identifier"},
            now=now,
        )
        return Outcome(error=InvalidCredentials())
    error, factors = check_credentials(
        session,
        identity=identity,
        user=user,
        password=password,
        second_factor=second_factor,
        actor=actor,
        now=now,
    )
    if error is not None:
        if not isinstance(error, (LoginThrottled, SecondFactorRequired)):
            address.failures += 1
        return Outcome(error=error)
    record(session, kind="login_succeeded", actor=actor, subject_user_id=user.id, now=now)
    return Outcome(user_id=user.id, factors=factors)


def check_credentials(
    session: Session,
    *,
    identity: Identity,
    user: User,
    password: str,
    second_factor: str | None,
    actor: Actor,
    now: datetime,
) -> tuple[PurseError | None, str]:
    """The password and, when 2FA is on, the second factor of a known user.

    Returns the error to answer with (after the commit), or None when both are
    right, and the factors that were checked ("password+totp"); counts failures
    and locks the account at the limit.
    """
    settings = identity.settings
    if user.locked_until is not None and user.locked_until <= now:
        # The lock has run out: a fresh start, not a lock again at the next mistake.
        user.failed_login_count, user.last_failed_login_at, user.locked_until = 0, None, None
    wait = rules.retry_after_seconds(
        user.failed_login_count,
        user.last_failed_login_at,
        now,
        delay_after_failures=settings.login_delay_after_failures,
    )
    if wait and user.failed_login_count < settings.login_failures_max:
        return LoginThrottled(retry_after_seconds=wait), ""
    locked = user.locked_until is not None and user.locked_until > now
    matches = identity.hasher.verify(user.password_hash, password)
    reason = None
    factors = "password"
    if locked:
        reason = "locked"
    elif user.status != "active":
        reason = "disabled"
    elif not matches:
        reason = "wrong_password"
    elif user.totp_enabled_at is not None:
        if not second_factor:
            return SecondFactorRequired(), ""  # the password was right: nothing to count
        second = check_second_factor(
            session, identity=identity, user=user, code=second_factor, actor=actor, now=now
        )
        if second is None:
            reason = "wrong_second_factor"
        else:
            factors = f"password+{second}"
    if reason is None:
        user.failed_login_count, user.last_failed_login_at, user.locked_until = 0, None, None
        if identity.hasher.needs_rehash(user.password_hash):
            user.password_hash = identity.hasher.hash(password)
        return None, factors
    if not locked:
        _count_failure(session, identity=identity, user=user, reason=reason, actor=actor, now=now)
    else:
        record(
            session,
            kind="login_failed",
            actor=actor,
            subject_user_id=user.id,
            data={"reason": reason},
            now=now,
        )
    if reason == "wrong_second_factor":
        return SecondFactorInvalid(), ""
    return InvalidCredentials(), ""


def _count_failure(
    session: Session, *, identity: Identity, user: User, reason: str, actor: Actor, now: datetime
) -> None:
    """One more consecutive failure; at the limit the account locks and its owner is told."""
    settings = identity.settings
    user.failed_login_count += 1
    user.last_failed_login_at = now
    record(
        session,
        kind="login_failed",
        actor=actor,
        subject_user_id=user.id,
        data={"reason": reason},
        now=now,
    )
    if user.failed_login_count >= settings.login_failures_max:
        user.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
        record(
            session,
            kind="account_locked",
            actor=actor,
            subject_user_id=user.id,
            data={"until": user.locked_until.isoformat()},
            now=now,
        )
        notify_user(
            session,
            identity=identity,
            user=user,
            template="account_locked",
            data={"minutes": settings.login_lockout_seconds // 60},
            now=now,
        )


def step_up(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    session_id: int,
    password: str,
    second_factor: str | None,
    actor: Actor,
    now: datetime | None = None,
) -> Outcome:
    """Confirm the password (and second factor) again, for sensitive actions in the next minutes."""
    now = now or utc_now()
    user = session.get_one(User, user_id)
    error, _factors = check_credentials(
        session,
        identity=identity,
        user=user,
        password=password,
        second_factor=second_factor,
        actor=actor,
        now=now,
    )
    if error is not None:
        return Outcome(error=error)
    signed_in = session.get_one(SessionRow, session_id)
    assert signed_in.user_id == user_id
    signed_in.authenticated_at = now
    record(
        session,
        kind="step_up",
        actor=actor,
        subject_user_id=user_id,
        data={"session_id": session_id},
        now=now,
    )
    return Outcome(user_id=user_id)


def notify_new_device(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    device: str,
    address: str | None,
    now: datetime | None = None,
) -> None:
    """Tell the user on every channel that their account was signed in from a new device.

    ``device`` is the stored form (``purse.devices``): the relay words it in the
    recipient's language when it sends the message."""
    user = session.get_one(User, user_id)
    notify_user(
        session,
        identity=identity,
        user=user,
        template="new_device_sign_in",
        data={"device": device, "address": address or ""},
        now=now or utc_now(),
    )


def sign_in(
    session: Session,
    *,
    identity: Identity,
    identifier: str,
    password: str,
    second_factor: str | None,
    kind: str,
    user_agent: str,
    actor: Actor,
    now: datetime | None = None,
) -> tuple[Outcome, Issued | None]:
    """Check the sign-in and, if it passes, open a web session or an API token pair.

    A first sign-in from a device tells the user on every channel. A refused
    attempt returns its outcome (no session) so the counters commit before the
    caller raises the error.
    """
    outcome = login(
        session,
        identity=identity,
        identifier=identifier,
        password=password,
        second_factor=second_factor,
        actor=actor,
        now=now,
    )
    if outcome.error is not None or outcome.user_id is None:
        return outcome, None
    issued, new_device = start_session(
        session,
        settings=identity.settings,
        user_id=outcome.user_id,
        kind=kind,
        user_agent=user_agent,
        actor=actor,
        auth_method=outcome.factors,
        now=now,
    )
    if new_device:
        notify_new_device(
            session,
            identity=identity,
            user_id=outcome.user_id,
            device=device_of(user_agent).stored(),
            address=actor.address,
            now=now,
        )
    return outcome, issued
