"""Two-factor authentication: TOTP (RFC 6238, pyotp) and recovery codes.

* Enrolment keeps the new secret pending until the user proves their app has
  it with a first code; only then is 2FA on, and 10 recovery codes are shown once.
* A TOTP code is accepted once: the time step it matched is recorded, and a
  code for that step or an earlier one is refused (replay in the same 30 s).
  One step of clock drift either way is tolerated.
* Recovery codes carry 80 random bits each, are stored as keyed hashes, and work
  once; making new ones retires the old ones.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.identity.context import Identity, notify_user
from purse.identity.errors import TotpAlreadyEnabled, TotpEnrolmentMissing, TotpNotEnabled
from purse.identity.models import RecoveryCode, User
from purse.models import utc_now

TOTP_CONTEXT = "identity_users.totp_secret"
RECOVERY_CODE_COUNT = 10
_STEP_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


def _secret(identity: Identity, token: str) -> str:
    return identity.cipher.decrypt(token, context=TOTP_CONTEXT)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code ``code`` is (now, or one step either side), if any."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    current = int(now.timestamp()) // _STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * _STEP_SECONDS), code):
            return step
    return None


def begin_totp(session: Session, *, identity: Identity, user_id: int, actor: Actor) -> Enrolment:
    """Make a new secret for the user's authenticator app; 2FA is on only once it is confirmed."""
    user = session.get_one(User, user_id)
    if user.totp_enabled_at is not None:
        raise TotpAlreadyEnabled()
    secret = pyotp.random_base32()  # 160 bits
    user.totp_pending_secret_encrypted = identity.cipher.encrypt(secret, context=TOTP_CONTEXT)
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=user.handle, issuer_name=identity.settings.totp_issuer
    )
    qr = segno.make(uri, error="m").svg_inline(scale=4, dark="#111827", light="#ffffff")
    record(session, kind="totp_enrolment_started", actor=actor, subject_user_id=user_id)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=qr)


def confirm_totp(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    code: str,
    actor: Actor,
    now: datetime | None = None,
) -> list[str] | None:
    """Turn 2FA on with the app's first code; returns the recovery codes, or None if wrong."""
    now = now or utc_now()
    user = session.get_one(User, user_id)
    if user.totp_enabled_at is not None:
        raise TotpAlreadyEnabled()
    if user.totp_pending_secret_encrypted is None:
        raise TotpEnrolmentMissing()
    step = matching_step(_secret(identity, user.totp_pending_secret_encrypted), code, now)
    if step is None:
        return None
    user.totp_secret_encrypted, user.totp_pending_secret_encrypted = (
        user.totp_pending_secret_encrypted,
        None,
    )
    user.totp_enabled_at, user.totp_last_step = now, step
    codes = _new_recovery_codes(session, identity=identity, user_id=user_id, now=now)
    record(session, kind="totp_enabled", actor=actor, subject_user_id=user_id, now=now)
    notify_user(session, identity=identity, user=user, template="two_factor_enabled", now=now)
    return codes


def disable_totp(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Turn 2FA off (the route demands a fresh step-up first) and retire the recovery codes."""
    now = now or utc_now()
    user = session.get_one(User, user_id)
    if user.totp_enabled_at is None:
        raise TotpNotEnabled()
    user.totp_secret_encrypted = user.totp_pending_secret_encrypted = None
    user.totp_enabled_at = user.totp_last_step = None
    _retire_recovery_codes(session, user_id=user_id, now=now)
    record(session, kind="totp_disabled", actor=actor, subject_user_id=user_id, now=now)
    notify_user(session, identity=identity, user=user, template="two_factor_disabled", now=now)


def regenerate_recovery_codes(
    session: Session,
    *,
    identity: Identity,
    user_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> list[str]:
    now = now or utc_now()
    user = session.get_one(User, user_id)
    if user.totp_enabled_at is None:
        raise TotpNotEnabled()
    codes = _new_recovery_codes(session, identity=identity, user_id=user_id, now=now)
    record(
        session, kind="recovery_codes_regenerated", actor=actor, subject_user_id=user_id, now=now
    )
    return codes


def check_second_factor(
    session: Session,
    *,
    identity: Identity,
    user: User,
    code: str,
    actor: Actor,
    now: datetime | None = None,
) -> str | None:
    """Accept a TOTP code (once per time step) or an unused recovery code.

    Returns which it was ("totp" or "recovery_code"), or None for a wrong or used code.
    """
    now = now or utc_now()
    if user.totp_enabled_at is None or user.totp_secret_encrypted is None:
        return None
    step = matching_step(_secret(identity, user.totp_secret_encrypted), code, now)
    if step is not None:
        if user.totp_last_step is not None and step <= user.totp_last_step:
            return None  # this code (or an older one) was already used
        user.totp_last_step = step
        return "totp"
    recovery = session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == identity.recovery_hash(code),
            RecoveryCode.used_at.is_(None),
        )
    ).first()
    if recovery is None:
        return None
    recovery.used_at = now
    record(session, kind="recovery_code_used", actor=actor, subject_user_id=user.id, now=now)
    return "recovery_code"


def _retire_recovery_codes(session: Session, *, user_id: int, now: datetime) -> None:
    session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
    )


def _new_recovery_codes(
    session: Session, *, identity: Identity, user_id: int, now: datetime
) -> list[str]:
    _retire_recovery_codes(session, user_id=user_id, now=now)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 bits, 16 characters
        code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
        session.add(
            RecoveryCode(user_id=user_id, code_hash=identity.recovery_hash(code), created_at=now)
        )
        codes.append(code)
    return codes
