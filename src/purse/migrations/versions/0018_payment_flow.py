"""The payment's way on: approval, the hold, capture, void, expiry and refunds.

* ``merchant_payments`` gains who approved it, the customer's operation, the hold and
  until when it lasts, the transfer that took the money, the amounts captured and
  refunded (bounded by CHECKs: never more captured than authorized, never more refunded
  than captured), the fulfilment reference, and when it was released.
* ``merchant_payment_events``: each payment's timeline, with the idempotency key of the
  merchant's request behind each step (unique per merchant and mode).
* ``merchants.capture_requires_fulfilment``: "no charge without fulfilment".

Revision ID: 0018_payment_flow
Revises: 0017_merchant_payments
Create Date: 2026-12-08 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0018_payment_flow"
down_revision: str | None = "0017_merchant_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = purse.models.UtcDateTime
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "merchant_payment_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("payment_id", BigId, nullable=False),
        sa.Column("merchant_id", BigId, nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("reference", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("operation_id", BigId, nullable=True),
        sa.Column("fulfilment_reference", sa.String(length=128), nullable=True),
        sa.Column("transfer_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('created', 'authorized', 'captured', 'voided', 'expired', 'refunded')",
            name=op.f("ck_merchant_payment_events_event"),
        ),
        sa.CheckConstraint(
            "mode IN ('test', 'live')", name=op.f("ck_merchant_payment_events_mode")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_payment_events_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_merchant_payment_events_operation_id_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["merchant_payments.id"],
            name=op.f("fk_merchant_payment_events_payment_id_merchant_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_payment_events")),
        sa.UniqueConstraint(
            "merchant_id",
            "mode",
            "idempotency_key",
            name=op.f("uq_merchant_payment_events_merchant_id_mode_idempotency_key"),
        ),
        sa.UniqueConstraint("reference", name=op.f("uq_merchant_payment_events_reference")),
    )
    op.create_index(
        "ix_merchant_payment_events_payment",
        "merchant_payment_events",
        ["payment_id", "id"],
        unique=False,
    )
    with op.batch_alter_table("merchant_payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_user_id", BigId, nullable=True))
        batch_op.add_column(sa.Column("operation_id", BigId, nullable=True))
        batch_op.add_column(sa.Column("authorized_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("hold_transfer_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("authorized_until", UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("charge_transfer_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("captured_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("captured_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("fulfilment_reference", sa.String(length=128), nullable=True))
        batch_op.add_column(
            sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("released_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_merchant_payments_captured_bounded"),
            "captured_minor >= 0 AND captured_minor <= amount_minor",
        )
        batch_op.create_check_constraint(
            op.f("ck_merchant_payments_refunded_bounded"),
            "refunded_minor >= 0 AND refunded_minor <= captured_minor",
        )
        batch_op.create_index(
            "ix_merchant_payments_authorized", ["status", "authorized_until"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_merchant_payments_operation_id_operations"),
            "operations",
            ["operation_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_merchant_payments_customer_user_id_identity_users"),
            "identity_users",
            ["customer_user_id"],
            ["id"],
        )
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "capture_requires_fulfilment",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_column("capture_requires_fulfilment")
    with op.batch_alter_table("merchant_payments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_merchant_payments_customer_user_id_identity_users"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_merchant_payments_operation_id_operations"), type_="foreignkey"
        )
        batch_op.drop_index("ix_merchant_payments_authorized")
        batch_op.drop_constraint(op.f("ck_merchant_payments_refunded_bounded"), type_="check")
        batch_op.drop_constraint(op.f("ck_merchant_payments_captured_bounded"), type_="check")
        for column in (
            "released_at",
            "refunded_minor",
            "fulfilment_reference",
            "captured_at",
            "captured_minor",
            "charge_transfer_id",
            "authorized_until",
            "hold_transfer_id",
            "authorized_at",
            "operation_id",
            "customer_user_id",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_merchant_payment_events_payment", table_name="merchant_payment_events")
    op.drop_table("merchant_payment_events")
