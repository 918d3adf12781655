"""The factors each sign-in checked, so every transfer names how its principal authenticated.

Revision ID: 0009_session_factors
Revises: 0008_outbox_relay
Create Date: 2026-11-27 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_session_factors"
down_revision: str | None = "0008_outbox_relay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "auth_method", sa.String(length=48), server_default="password", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_sessions", schema=None) as batch_op:
        batch_op.drop_column("auth_method")
