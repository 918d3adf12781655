"""Identity tables: users, one-time codes, failed logins per client address.

Phone and email are stored encrypted (``purse.crypto``) with a keyed lookup hash
beside each, unique, so an account can be found by exact match without the
plaintext ever being stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime

ROLES = ("user", "merchant_member", "agent", "senior_agent", "admin")


class User(Base):
    __tablename__ = "identity_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    handle: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16), default="user")
    status: Mapped[str] = mapped_column(String(16), default="active")
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    phone_lookup: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    email_encrypted: Mapped[str | None] = mapped_column(Text)
    email_lookup: Mapped[str | None] = mapped_column(String(64), unique=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    kyc_level: Mapped[int] = mapped_column(Integer, default=0)
    # A new phone or email waiting for its code (encrypted); it replaces the old one once confirmed.
    pending_contact_channel: Mapped[str | None] = mapped_column(String(8))
    pending_contact_encrypted: Mapped[str | None] = mapped_column(Text)
    # TOTP (RFC 6238): the secret is encrypted; the last accepted time step stops replays.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_pending_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(
            "role IN ('user', 'merchant_member', 'agent', 'senior_agent', 'admin')", name="role"
        ),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        CheckConstraint("phone_lookup IS NOT NULL OR email_lookup IS NOT NULL", name="contact"),
    )


class OneTimeCode(Base):
    """A 6-digit code sent to the user; only its keyed hash is stored."""

    __tablename__ = "identity_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    purpose: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(8))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_identity_codes_user_purpose", "user_id", "purpose", "id"),)


class AddressFailures(Base):
    """Failed logins from one client address, counted in the database across processes."""

    __tablename__ = "identity_address_failures"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Session(Base):
    """A signed-in device: a web session (cookie) or an API token pair.

    Only SHA-256 hashes of the tokens are stored; the tokens themselves (256 random
    bits each) are shown once, to the client that signed in.
    """

    __tablename__ = "identity_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_refresh_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    device: Mapped[str] = mapped_column(String(128))
    user_agent: Mapped[str] = mapped_column(String(256))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    authenticated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The factors the sign-in checked ("password", "password+totp", "password+recovery_code").
    auth_method: Mapped[str] = mapped_column(String(48), server_default="password")
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (CheckConstraint("kind IN ('web', 'api')", name="kind"),)


class RecoveryCode(Base):
    """A single-use second factor for when the authenticator app is lost (keyed hash only)."""

    __tablename__ = "identity_recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AccessGrant(Base):
    """Access to someone else's objects, given for a reason and for a time.

    A support agent who is assigned a case gets a grant to read that user's
    history "because case 123 assigns them"; the grant ends when the case does
    (``revoked_at``) or at ``expires_at``, whichever comes first. Access helpers
    (:mod:`purse.identity.access`) consult these rows; nothing else does.
    """

    __tablename__ = "identity_access_grants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    grantee_user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    subject_user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    permission: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))  # "case:123"
    granted_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index(
            "ix_identity_access_grants_lookup", "grantee_user_id", "subject_user_id", "permission"
        ),
    )
