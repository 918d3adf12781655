"""Access grants: an agent may read a user's history because a case assigns them, until then.

Revision ID: 0011_access_grants
Revises: 0010_operations
Create Date: 2026-11-27 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0011_access_grants"
down_revision: str | None = "0010_operations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "identity_access_grants",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("grantee_user_id", BigId, nullable=False),
        sa.Column("subject_user_id", BigId, nullable=False),
        sa.Column("permission", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", purse.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", purse.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", purse.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["grantee_user_id"],
            ["identity_users.id"],
            name=op.f("fk_identity_access_grants_grantee_user_id_identity_users"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_user_id"],
            ["identity_users.id"],
            name=op.f("fk_identity_access_grants_subject_user_id_identity_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_access_grants")),
    )
    with op.batch_alter_table("identity_access_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_identity_access_grants_lookup",
            ["grantee_user_id", "subject_user_id", "permission"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_access_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_access_grants_lookup")
    op.drop_table("identity_access_grants")
