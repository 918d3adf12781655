"""Merchants, their members and their API keys.

* ``merchants``: a business that takes payments (display names in English and
  Chinese, the initial shown as its logo, a status).
* ``merchant_members``: who works for which merchant, as owner, developer,
  support or viewer.
* ``merchant_api_keys``: secret keys stored as keyed hashes, with their mode, scopes,
  name, last use and end (revoked, or rolled with an overlap).

Revision ID: 0016_merchants
Revises: 0015_chain_sealer
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0016_merchants"
down_revision: str | None = "0015_chain_sealer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = purse.models.UtcDateTime
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column("name_zh", sa.String(length=80), nullable=False),
        sa.Column("logo_initial", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'closed')", name=op.f("ck_merchants_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
    )
    op.create_table(
        "merchant_members",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("merchant_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'developer', 'support', 'viewer')",
            name=op.f("ck_merchant_members_role"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_members_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["identity_users.id"],
            name=op.f("fk_merchant_members_user_id_identity_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_members")),
        sa.UniqueConstraint(
            "merchant_id", "user_id", name=op.f("uq_merchant_members_merchant_id_user_id")
        ),
    )
    op.create_index(
        op.f("ix_merchant_members_user_id"), "merchant_members", ["user_id"], unique=False
    )
    op.create_table(
        "merchant_api_keys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("merchant_id", BigId, nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("secret_lookup", sa.String(length=64), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("created_by_user_id", BigId, nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("rolled_to_id", BigId, nullable=True),
        sa.CheckConstraint("mode IN ('test', 'live')", name=op.f("ck_merchant_api_keys_mode")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_merchant_api_keys_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["identity_users.id"],
            name=op.f("fk_merchant_api_keys_created_by_user_id_identity_users"),
        ),
        sa.ForeignKeyConstraint(
            ["rolled_to_id"],
            ["merchant_api_keys.id"],
            name=op.f("fk_merchant_api_keys_rolled_to_id_merchant_api_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_api_keys")),
        sa.UniqueConstraint("secret_lookup", name=op.f("uq_merchant_api_keys_secret_lookup")),
    )
    op.create_index(
        "ix_merchant_api_keys_merchant",
        "merchant_api_keys",
        ["merchant_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_merchant_api_keys_merchant", table_name="merchant_api_keys")
    op.drop_table("merchant_api_keys")
    op.drop_index(op.f("ix_merchant_members_user_id"), table_name="merchant_members")
    op.drop_table("merchant_members")
    op.drop_table("merchants")
