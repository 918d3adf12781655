"""The outbox relay: leases so several workers send each message once, giving up, and
the event each message reports (at most one message per event and channel).

Revision ID: 0008_outbox_relay
Revises: 0007_provider_due
Create Date: 2026-11-23 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0008_outbox_relay"
down_revision: str | None = "0007_provider_due"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notify_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("lease_until", purse.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_error", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("gave_up_at", purse.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("event_key", sa.String(length=80), nullable=True))
        batch_op.create_index("ux_notify_outbox_event", ["event_key", "channel"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("notify_outbox", schema=None) as batch_op:
        batch_op.drop_index("ux_notify_outbox_event")
        batch_op.drop_column("event_key")
        batch_op.drop_column("gave_up_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_token")
