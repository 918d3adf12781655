"""Webhooks: where merchants hear about their payments, and every attempt to tell them.

* ``merchant_webhook_endpoints``: a URL per merchant and mode, the event types it wants,
  its signing secret (encrypted; the previous one too, while a rotation overlaps).
* ``merchant_webhook_events``: each event, written in the transaction that made it, with
  its message id and the body every delivery sends.
* ``merchant_webhook_deliveries``: an event on its way to one endpoint, and when the
  worker tries next.
* ``merchant_webhook_attempts``: the delivery log.

Revision ID: 0019_webhooks
Revises: 0018_payment_flow
Create Date: 2026-12-08 01:41:57.730454
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0019_webhooks"
down_revision: str | None = "0018_payment_flow"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "merchant_webhook_endpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("event_types", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", purse.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", purse.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", purse.models.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "mode IN ('test', 'live')", name=op.f("ck_merchant_webhook_endpoints_mode")
        ),
        sa.CheckConstraint(
            "status IN ('enabled', 'disabled')", name=op.f("ck_merchant_webhook_endpoints_status")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_webhook_endpoints_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_webhook_endpoints")),
    )
    with op.batch_alter_table("merchant_webhook_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            "ix_merchant_webhook_endpoints_merchant",
            ["merchant_id", "mode", "status"],
            unique=False,
        )

    op.create_table(
        "merchant_webhook_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column(
            "merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", purse.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_webhook_events_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["merchant_payments.id"],
            name=op.f("fk_merchant_webhook_events_payment_id_merchant_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_webhook_events")),
        sa.UniqueConstraint("message_id", name=op.f("uq_merchant_webhook_events_message_id")),
    )
    with op.batch_alter_table("merchant_webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_merchant_webhook_events_merchant", ["merchant_id", "mode", "id"], unique=False
        )

    op.create_table(
        "merchant_webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "endpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", purse.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", purse.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", purse.models.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')",
            name=op.f("ck_merchant_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["merchant_webhook_endpoints.id"],
            name=op.f("fk_merchant_webhook_deliveries_endpoint_id_merchant_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["merchant_webhook_events.id"],
            name=op.f("fk_merchant_webhook_deliveries_event_id_merchant_webhook_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_webhook_deliveries")),
        sa.UniqueConstraint(
            "event_id",
            "endpoint_id",
            name=op.f("uq_merchant_webhook_deliveries_event_id_endpoint_id"),
        ),
    )
    with op.batch_alter_table("merchant_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_merchant_webhook_deliveries_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_merchant_webhook_deliveries_endpoint", ["endpoint_id", "id"], unique=False
        )

    op.create_table(
        "merchant_webhook_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("attempted_at", purse.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_excerpt", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["merchant_webhook_deliveries.id"],
            name=op.f("fk_merchant_webhook_attempts_delivery_id_merchant_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_webhook_attempts")),
    )
    with op.batch_alter_table("merchant_webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_merchant_webhook_attempts_delivery", ["delivery_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("merchant_webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_webhook_attempts_delivery")

    op.drop_table("merchant_webhook_attempts")
    with op.batch_alter_table("merchant_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_webhook_deliveries_endpoint")
        batch_op.drop_index("ix_merchant_webhook_deliveries_due")

    op.drop_table("merchant_webhook_deliveries")
    with op.batch_alter_table("merchant_webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_webhook_events_merchant")

    op.drop_table("merchant_webhook_events")
    with op.batch_alter_table("merchant_webhook_endpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_merchant_webhook_endpoints_merchant")

    op.drop_table("merchant_webhook_endpoints")
