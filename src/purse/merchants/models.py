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
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
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
