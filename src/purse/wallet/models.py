"""Wallet tables: what the wallet keeps beside the shared operation record.

The operations themselves (sends, top-ups, withdrawals, conversions) are rows of
the shared ``operations`` table (:mod:`purse.operations.models`); cards and bank
accounts are the funding domain's (:mod:`purse.funding.models`). Here:

* ``wallet_requests``: money asked of another user, answered or expired.
* ``wallet_fx_rates`` (the operator's table) and ``wallet_fx_quotes`` (a price
  promised to one user until it expires).
* ``wallet_statements``: monthly statements produced on demand by a worker.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime


class MoneyRequest(Base):
    __tablename__ = "wallet_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'paid', 'declined', 'cancelled', 'expired')", name="status"
        ),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_wallet_requests_open", "status", "expires_at"),
        # Requests made by or of one user, newest first: each side along its own index.
        Index("ix_wallet_requests_requester", "requester_id", "id"),
        Index("ix_wallet_requests_payer", "payer_id", "id"),
    )


class FxRate(Base):
    __tablename__ = "wallet_fx_rates"

    base_asset: Mapped[str] = mapped_column(String(12), primary_key=True)
    quote_asset: Mapped[str] = mapped_column(String(12), primary_key=True)
    # Units of the quote asset for one unit of the base asset, as a decimal string.
    rate: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class FxQuote(Base):
    __tablename__ = "wallet_fx_quotes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    from_asset: Mapped[str] = mapped_column(String(12))
    to_asset: Mapped[str] = mapped_column(String(12))
    from_amount_minor: Mapped[int] = mapped_column(BigInteger)
    to_amount_minor: Mapped[int] = mapped_column(BigInteger)
    spread_minor: Mapped[int] = mapped_column(BigInteger)
    mid_rate: Mapped[str] = mapped_column(String(40))
    rate: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Statement(Base):
    __tablename__ = "wallet_statements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))
    format: Mapped[str] = mapped_column(String(8))
    locale: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    lines_total: Mapped[int] = mapped_column(Integer, default=0)
    lines_done: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("format IN ('csv', 'pdf')", name="format"),
        CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name="status"),
        Index("ix_wallet_statements_queue", "status", "id"),
    )
