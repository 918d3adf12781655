"""The simulator's own books: the payments it has been asked for and their outcomes.

The simulator behaves like a processor on the other side of a network, so it
keeps its state in its own table (in purse's database, for convenience) and is
only ever called outside purse's own transactions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime


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
