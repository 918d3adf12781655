"""The tables of money operations, shared by every domain that moves money for someone.

* ``operations`` is one row per thing a person (or an app, a merchant, an agent)
  did with money: a send, a top-up, a payment, a refund. It carries the reference
  a user can quote to support, the kind (registered by the domain that makes it,
  see :mod:`purse.operations.kinds`), its status, the counterparty, the fee and
  rate, who initiated it and how they authenticated, from which device, and the
  ledger transfers behind it. ``(user_id, idempotency_key)`` is unique, so a
  retried request finds its first operation instead of making a second.
* ``operation_events`` is each operation's status timeline (append-only).
* ``operation_spending`` keeps running totals of each user's spending per
  15-minute slot, so the limits need not sum a month of operations per send.
* ``operation_accounts`` maps an owner and an asset to its ledger account: one
  wallet per user per asset, and the system accounts operations post against
  (provider clearing, FX position, FX revenue). The primary key makes "open it if
  it does not exist" safe when two requests race.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime

OPERATION_STATUSES = ("pending", "completed", "failed")


class OperationAccount(Base):
    __tablename__ = "operation_accounts"

    # "user:<id>" for a user's wallet, "system:<kind>" for the accounts purse posts against.
    owner: Mapped[str] = mapped_column(String(48), primary_key=True)
    asset: Mapped[str] = mapped_column(String(12), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)


class Operation(Base):
    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    counterparty_user_id: Mapped[int | None] = mapped_column(ForeignKey("identity_users.id"))
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    to_asset: Mapped[str | None] = mapped_column(String(12))
    to_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    rate: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(200))
    funding_source_id: Mapped[int | None] = mapped_column(ForeignKey("funding_sources.id"))
    money_request_id: Mapped[int | None] = mapped_column(BigInteger)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_reference: Mapped[str | None] = mapped_column(String(64))
    # Where a provider-backed operation stands with the provider: created (not yet
    # acknowledged), submitted (accepted, waiting for the outcome), answered.
    provider_stage: Mapped[str | None] = mapped_column(String(16))
    provider_attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the follow-up job should next ask the provider (backing off after each try).
    provider_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ledger_group_id: Mapped[int | None] = mapped_column(BigInteger)
    hold_transfer_id: Mapped[int | None] = mapped_column(BigInteger)
    hold_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    initiator_kind: Mapped[str] = mapped_column(String(32))
    initiator_id: Mapped[str] = mapped_column(String(128))
    authenticated_by: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint("status IN ('pending', 'completed', 'failed')", name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        # Activity of one user, newest first, keyset on id: as initiator and as counterparty.
        Index("ix_operations_user", "user_id", "id"),
        Index("ix_operations_counterparty", "counterparty_user_id", "id"),
        # A user's pending operations, newest first, without reading the completed ones.
        Index("ix_operations_user_status", "user_id", "status", "id"),
        # Limits take back a user's failed spending of this month (see operations.spending).
        Index("ix_operations_user_failed", "user_id", "status", "asset", "created_at"),
        Index("ix_operations_provider_due", "status", "provider_due_at"),
    )


class OperationEvent(Base):
    __tablename__ = "operation_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), index=True)
    event: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SpendingSlot(Base):
    """What a user's spending operations of one asset took in one 15-minute slot (UTC).

    Running totals for the limits: see :mod:`purse.operations.spending`.
    """

    __tablename__ = "operation_spending"

    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), primary_key=True)
    asset: Mapped[str] = mapped_column(String(12), primary_key=True)
    slot_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
