"""Identity use cases: sign-up, verification codes, login with throttling and lockout.

Security counters (failed logins, wrong codes) must be kept even when the attempt
fails, so these use cases do not raise on a refused attempt: they return an
:class:`Outcome` whose error the entrypoint raises *after* the transaction has
committed the counter. Everything else follows the usual rule: one transaction,
and a raised error changes nothing.

Answers never reveal whether an account exists: an unknown login identifier is
checked against a dummy hash and counted like a known one, and signing up with a
phone or email that already has an account answers as if it worked and tells the
owner instead.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.errors import PurseError
from purse.identity import rules
from purse.identity.context import EMAIL_CONTEXT, PHONE_CONTEXT, Identity, contact, notify_user
from purse.identity.errors import (
    CodeAttemptsExceeded,
    CodeInvalid,
    CodeSendThrottled,
    ContactRequired,
    ContactTaken,
    HandleTaken,
    InvalidCredentials,
    LoginThrottled,
    RoleInvalid,
    SecondFactorInvalid,
    SecondFactorRequired,
    UserNotFound,
)
from purse.identity.models import ROLES, AddressFailures, OneTimeCode, User
from purse.identity.models import Session as SessionRow
from purse.identity.sessions import Issued, device_name, end_all_sessions, start_session
from purse.identity.twofactor import check_second_factor
from purse.models import utc_now
from purse.notify.service import enqueue


@dataclass(frozen=True, slots=True)
class Outcome:
    """A use case that counted an attempt: the user it concerns, or the error to raise."""

    user_id: int | None = None
    error: PurseError | None = None

    def raise_for_error(self) -> int:
        if self.error is not None:
            raise self.error
        assert self.user_id is not None
        return self.user_id


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
        data={"code": code, "minutes": settings.code_ttl_seconds // 60},
        now=now,
    )


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
        return session.scalars(
            select(User).where(User.handle == rules.normalize_handle(identifier))
        ).first()
    except PurseError:
        return None  # malformed: no account, answered like any unknown one


def _counter(session: Session, key: str, *, now: datetime, window_seconds: int) -> AddressFailures:
    query = select(AddressFailures).where(AddressFailures.address == key)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        row = AddressFailures(address=key, failures=0, window_started_at=now)
        session.add(row)
    elif row.window_started_at + timedelta(seconds=window_seconds) <= now:
        row.failures, row.window_started_at = 0, now
    return row


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
    address = _counter(
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
        unknown = _counter(
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
    error = check_credentials(
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
    return Outcome(user_id=user.id)


def check_credentials(
    session: Session,
    *,
    identity: Identity,
    user: User,
    password: str,
    second_factor: str | None,
    actor: Actor,
    now: datetime,
) -> PurseError | None:
    """The password and, when 2FA is on, the second factor of a known user.

    Returns the error to answer with (after the commit), or None when both are
    right; counts failures and locks the account at the limit.
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
        return LoginThrottled(retry_after_seconds=wait)
    locked = user.locked_until is not None and user.locked_until > now
    matches = identity.hasher.verify(user.password_hash, password)
    reason = None
    if locked:
        reason = "locked"
    elif user.status != "active":
        reason = "disabled"
    elif not matches:
        reason = "wrong_password"
    elif user.totp_enabled_at is not None:
        if not second_factor:
            return SecondFactorRequired()  # the password was right: nothing to count
        if not check_second_factor(
            session, identity=identity, user=user, code=second_factor, actor=actor, now=now
        ):
            reason = "wrong_second_factor"
    if reason is None:
        user.failed_login_count, user.last_failed_login_at, user.locked_until = 0, None, None
        if identity.hasher.needs_rehash(user.password_hash):
            user.password_hash = identity.hasher.hash(password)
        return None
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
        return SecondFactorInvalid()
    return InvalidCredentials()


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
    error = check_credentials(
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


def notify_new_device(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    device: str,
    address: str | None,
    now: datetime | None = None,
) -> None:
    """Tell the user on every channel that their account was signed in from a new device."""
    user = session.get_one(User, user_id)
    notify_user(
        session,
        identity=identity,
        user=user,
        template="new_device_sign_in",
        data={"device": device, "address": address or ""},
        now=now or utc_now(),
    )


def _verified_contact_user(
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
    user = _verified_contact_user(
        session, identity=identity, identifier=identifier, channel=channel
    )
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
    user = _verified_contact_user(
        session, identity=identity, identifier=identifier, channel=channel
    )
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
        now=now,
    )
    if new_device:
        notify_new_device(
            session,
            identity=identity,
            user_id=outcome.user_id,
            device=device_name(user_agent),
            address=actor.address,
            now=now,
        )
    return outcome, issued
