"""Merchant tables.

* ``merchants``: a business that takes payments, with its display name in English
  and Chinese and the initial shown as its logo.
* ``merchant_members``: who works for a merchant, and as what (owner, developer,
  support, viewer). Membership, not a user's role, decides what a person may do
  for a merchant; a person may work for several.
* ``merchant_api_keys``: a merchant's server authenticates with a secret key
  (``sk_test_...`` or ``sk_live_...``). The secret is shown once, when the key is
  made, and stored only as a keyed hash (``secret_lookup``, HMAC with purse's
  lookup key), so a copy of the database does not hold a usable key. A key has a
  mode (test keys never touch live money), scopes, a name, when it was last used,
  and an end: revoked at once, or, when rolled, after an overlap in which the old
  and the new key both work.
* ``merchant_payments``: a payment a merchant's server asked for (amount, description,
  its order reference, metadata, how it is captured) and where it stands.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name_en: Mapped[str] = mapped_column(String(80))
    name_zh: Mapped[str] = mapped_column(String(80))
    logo_initial: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint("status IN ('active', 'closed')", name="status"),)


class MerchantMember(Base):
    __tablename__ = "merchant_members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("merchant_id", "user_id"),
        CheckConstraint("role IN ('owner', 'developer', 'support', 'viewer')", name="role"),
    )


class MerchantApiKey(Base):
    __tablename__ = "merchant_api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))  # space-separated, sorted
    secret_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The key stops working at this instant: at once when revoked, after the overlap
    # when rolled (``rolled_to_id`` is then the key that replaced it).
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rolled_to_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_api_keys.id"))

    __table_args__ = (
        CheckConstraint("mode IN ('test', 'live')", name="mode"),
        Index("ix_merchant_api_keys_merchant", "merchant_id", "created_at"),
    )


class MerchantPayment(Base):
    """A payment a merchant asked for, which its customer approves (or not).

    Made by the merchant's server with a key (``created_by_key_id``) in that key's mode;
    ``(merchant_id, mode, idempotency_key)`` is unique, and ``fingerprint`` tells a retry
    from another request under the same key.
    """

    __tablename__ = "merchant_payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(8))
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(200))
    order_reference: Mapped[str | None] = mapped_column(String(128))
    metadata_json: Mapped[str] = mapped_column(Text)
    capture_method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    approve_by: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by_key_id: Mapped[int] = mapped_column(ForeignKey("merchant_api_keys.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("merchant_id", "mode", "idempotency_key"),
        CheckConstraint("mode IN ('test', 'live')", name="mode"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("capture_method IN ('automatic', 'manual')", name="capture_method"),
        CheckConstraint(
            "status IN ('requires_approval', 'authorized', 'captured', 'voided', 'expired')",
            name="status",
        ),
        # A merchant's payments in one mode, newest first (the dashboard, the API's list).
        Index("ix_merchant_payments_merchant", "merchant_id", "mode", "id"),
        # Payments waiting for approval past their window (the expiry job).
        Index("ix_merchant_payments_due", "status", "approve_by"),
    )
