"""Wallet tables: what a user sees of their money, beside the ledger that moves it.

* ``wallet_accounts`` maps an owner and an asset to its ledger account: one
  wallet per user per asset, and the system accounts the wallet posts against
  (provider clearing, FX position, FX revenue). The primary key makes "open it
  if it does not exist" safe when two requests race.
* ``wallet_operations`` is one row per thing a user did (top-up, withdrawal,
  send, conversion): the reference they can quote to support, its status, the
  counterparty, the fee and rate, who initiated it from which device, and the
  ledger transfers behind it. ``(user_id, idempotency_key)`` is unique, so a
  retried request finds its first operation instead of making a second.
* ``wallet_operation_events`` is each operation's status timeline (append-only).
* ``wallet_funding_sources``: cards and bank accounts as a provider token, the
  brand, the last four digits and the holder's name (encrypted). Never a full
  card or account number.
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
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime

OPERATION_KINDS = ("top_up", "withdrawal", "send", "convert")
OPERATION_STATUSES = ("pending", "completed", "failed")


class WalletAccount(Base):
    __tablename__ = "wallet_accounts"

    # "user:<id>" for a user's wallet, "system:<kind>" for the accounts purse posts against.
    owner: Mapped[str] = mapped_column(String(48), primary_key=True)
    asset: Mapped[str] = mapped_column(String(12), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)


class FundingSource(Base):
    __tablename__ = "wallet_funding_sources"

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


class Operation(Base):
    __tablename__ = "wallet_operations"

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
    funding_source_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_funding_sources.id"))
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
        CheckConstraint("kind IN ('top_up', 'withdrawal', 'send', 'convert')", name="kind"),
        CheckConstraint("status IN ('pending', 'completed', 'failed')", name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        # Activity of one user, newest first, keyset on id: as initiator and as counterparty.
        Index("ix_wallet_operations_user", "user_id", "id"),
        Index("ix_wallet_operations_counterparty", "counterparty_user_id", "id"),
        # Limits sum a user's outgoing money per asset since the start of a day or month.
        Index("ix_wallet_operations_limits", "user_id", "asset", "created_at"),
        Index("ix_wallet_operations_provider_due", "status", "provider_due_at"),
    )


class OperationEvent(Base):
    __tablename__ = "wallet_operation_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("wallet_operations.id"), index=True)
    event: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MoneyRequest(Base):
    __tablename__ = "wallet_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_operations.id"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'paid', 'declined', 'cancelled', 'expired')", name="status"
        ),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_wallet_requests_open", "status", "expires_at"),
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
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("wallet_operations.id"))
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
