"""Funding tables: the cards and bank accounts users link, and the simulator's own books.

* ``funding_sources``: cards and bank accounts as a provider token, the brand, the
  last four digits and the holder's name (encrypted). Never a full card or
  account number.
* ``funding_simulator_payments``: the built-in simulator behaves like a processor
  on the other side of a network, so it keeps its state in a table of its own (in
  purse's database, for convenience) and is only ever called outside purse's own
  transactions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime


class FundingSource(Base):
    __tablename__ = "funding_sources"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    provider_token: Mapped[str] = mapped_column(String(128))
    brand: Mapped[str] = mapped_column(String(48))
    last4: Mapped[str] = mapped_column(String(4))
    holder_name_encrypted: Mapped[str] = mapped_column(Text)
    expiry_month: Mapped[int | None] = mapped_column(Integer)
    expiry_year: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("kind IN ('card', 'bank_account')", name="kind"),
        CheckConstraint("status IN ('active', 'removed')", name="status"),
    )


class SimulatedPayment(Base):
    __tablename__ = "funding_simulator_payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    provider_reference: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    token: Mapped[str] = mapped_column(String(128))
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    decline_code: Mapped[str | None] = mapped_column(String(48))
    settle_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Callbacks still to send for a settled payment (two for the duplicate scenario).
    deliveries_due: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("kind IN ('charge', 'payout')", name="kind"),
        CheckConstraint("status IN ('accepted', 'succeeded', 'declined')", name="status"),
        Index("ix_funding_simulator_payments_due", "deliveries_due", "settle_at"),
    )
