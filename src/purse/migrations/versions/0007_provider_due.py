"""When to ask a silent funding provider again: follow-ups back off instead of polling.

Revision ID: 0007_provider_due
Revises: 0006_wallet
Create Date: 2026-11-23 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0007_provider_due"
down_revision: str | None = "0006_wallet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("wallet_operations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("provider_due_at", purse.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index("ix_wallet_operations_provider")
        batch_op.create_index(
            "ix_wallet_operations_provider_due", ["status", "provider_due_at"], unique=False
        )
    op.execute(
        "UPDATE wallet_operations SET provider_due_at = updated_at "
        "WHERE status = 'pending' AND provider_stage IN ('created', 'submitted')"
    )


def downgrade() -> None:
    with op.batch_alter_table("wallet_operations", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_operations_provider_due")
        batch_op.create_index(
            "ix_wallet_operations_provider",
            ["status", "provider_stage", "updated_at"],
            unique=False,
        )
        batch_op.drop_column("provider_due_at")
