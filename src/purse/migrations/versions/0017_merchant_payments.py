"""Merchant payments: what a merchant's server asks a customer to pay.

``merchant_payments``: amount, description, the merchant's order reference, metadata,
the capture method, the status and until when the customer may approve; the key that
made it, and its idempotency key (unique per merchant and mode) with the request's
fingerprint.

Revision ID: 0017_merchant_payments
Revises: 0016_merchants
Create Date: 2026-12-07 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0017_merchant_payments"
down_revision: str | None = "0016_merchants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = purse.models.UtcDateTime
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "merchant_payments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", BigId, nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("asset", sa.String(length=12), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("order_reference", sa.String(length=128), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("capture_method", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("approve_by", UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by_key_id", BigId, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('test', 'live')", name=op.f("ck_merchant_payments_mode")),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_merchant_payments_amount_positive")),
        sa.CheckConstraint(
            "capture_method IN ('automatic', 'manual')",
            name=op.f("ck_merchant_payments_capture_method"),
        ),
        sa.CheckConstraint(
            "status IN ('requires_approval', 'authorized', 'captured', 'voided', 'expired')",
            name=op.f("ck_merchant_payments_status"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_payments_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_key_id"],
            ["merchant_api_keys.id"],
            name=op.f("fk_merchant_payments_created_by_key_id_merchant_api_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_merchant_payments_reference")),
        sa.UniqueConstraint(
            "merchant_id",
            "mode",
            "idempotency_key",
            name=op.f("uq_merchant_payments_merchant_id_mode_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_merchant_payments_merchant",
        "merchant_payments",
        ["merchant_id", "mode", "id"],
        unique=False,
    )
    op.create_index(
        "ix_merchant_payments_due", "merchant_payments", ["status", "approve_by"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_merchant_payments_due", table_name="merchant_payments")
    op.drop_index("ix_merchant_payments_merchant", table_name="merchant_payments")
    op.drop_table("merchant_payments")
