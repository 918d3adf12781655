"""Ledger tables.

* ``ledger_accounts``: one balance per asset and owner. Balances are kept as
  posted/pending debits/credits (TigerBeetle's model) and changed only by the
  ledger service, in the same DB transaction as the transfer that moves them.
* ``ledger_transfers``: append-only, but for its seal. ``chain_seq`` is the
  transfer's position in the hash chain and ``hash`` its link, both set once
  when it is sealed (:mod:`purse.ledger.sealer`): on SQLite by its own batch, so
  ``chain_seq`` is the id; on PostgreSQL by the sealer, soon after it commits,
  with ids from a sequence. ``pending_id`` is unique: a hold is resolved at most
  once, enforced by the database itself.
* ``ledger_holds``: the state of each pending transfer (pending -> posted |
  voided | expired). Like balances it is derived state, checked by verify.
* ``ledger_idempotency``: caller-scoped keys with a fingerprint of the request.
* ``ledger_chain``: the head of the hash chain (one row), and how far the month
  balances are written. Every batch reads this row, which is the guard against
  transfers dated into a closed month; on PostgreSQL with a key-share lock, which
  the sealer's update of the head never waits for, and the month job's lock does.
* ``ledger_month_balances``: an account's posted debits and credits at the start
  of a month (local midnight on the 1st in the operator's time zone, kept as a UTC
  instant): the sums of its posted transfers dated before that instant. A derived
  read-model written only by the ledger's month job, for accounts that moved in
  the month before; statements start from it instead of counting back from
  today's balance. Verify checks every row against the transfers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from purse.hashchain import GENESIS_HASH
from purse.models import Base, BigId, UtcDateTime

__all__ = [
    "GENESIS_HASH",
    "Account",
    "ChainHead",
    "Hold",
    "IdempotencyKey",
    "MonthBalance",
    "Transfer",
]


class Account(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asset: Mapped[str] = mapped_column(String(12))
    owner_kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), default="active")
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status"),
        Index("ix_ledger_accounts_owner", "owner_kind", "owner_id", "asset"),
    )


class Transfer(Base):
    __tablename__ = "ledger_transfers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    group_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    pending_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transfers.id"), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reversal_of: Mapped[int | None] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    reason_code: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(128))
    initiator_kind: Mapped[str] = mapped_column(String(32))
    initiator_id: Mapped[str] = mapped_column(String(128))
    authenticated_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    hash: Mapped[str | None] = mapped_column(String(64))
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, index=True)

    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "kind IN ('posted', 'pending', 'post_pending', 'void_pending', 'expire_pending')",
            name="kind",
        ),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_different"),
        # One account's postings in a time range (a statement's month, what came after it).
        Index("ix_ledger_transfers_debit_time", "debit_account_id", "created_at"),
        Index("ix_ledger_transfers_credit_time", "credit_account_id", "created_at"),
        # What the sealer has still to chain, in id order: holds only those rows.
        Index(
            "ix_ledger_transfers_unsealed",
            "id",
            sqlite_where=text("chain_seq IS NULL"),
            postgresql_where=text("chain_seq IS NULL"),
        ),
    )


class Hold(Base):
    __tablename__ = "ledger_holds"

    transfer_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transfers.id"), primary_key=True, autoincrement=False
    )
    debit_account_id: Mapped[int] = mapped_column(BigInteger)
    credit_account_id: Mapped[int] = mapped_column(BigInteger)
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    resolved_by_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name="status"),
        Index("ix_ledger_holds_status_expires", "status", "expires_at"),
    )


class IdempotencyKey(Base):
    __tablename__ = "ledger_idempotency"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)

    __table_args__ = (UniqueConstraint("scope", "key"),)


class ChainHead(Base):
    __tablename__ = "ledger_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The chain's length: the position of the last transfer sealed, whose hash is this.
    last_chain_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    # The newest month start the ledger has closed: transfers dated at or before it
    # are refused, so the month balances at it can never change.
    checkpoint_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The month start before it: the rows at ``checkpoint_at`` add up the postings
    # from here (None for the first, which adds up everything before it).
    checkpoint_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # While the rows at ``checkpoint_at`` are being written, the last account done;
    # None once every account's is.
    checkpoint_account_id: Mapped[int | None] = mapped_column(BigInteger)


class MonthBalance(Base):
    __tablename__ = "ledger_month_balances"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_accounts.id"), primary_key=True, autoincrement=False
    )
    month_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    debits_posted: Mapped[int] = mapped_column(BigInteger)
    credits_posted: Mapped[int] = mapped_column(BigInteger)
