"""Running spending totals for the limits, instead of a sum of the month per send.

* ``operation_spending`` (user, asset, 15-minute slot in UTC): what the user's
  spending operations took in that slot. Filled here from the operations there
  are (the spending kinds at this revision: ``send`` and ``withdrawal``).
* ``ix_operations_user_failed`` (user, status, asset, created_at) replaces
  ``ix_operations_limits``: the check now reads only a user's failed operations
  of the month, to take them back out of the totals.

Revision ID: 0013_spending_totals
Revises: 0012_history_indexes
Create Date: 2026-11-27 22:30:00
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0013_spending_totals"
down_revision: str | None = "0012_history_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = purse.models.UtcDateTime
SPENDING_KINDS = ("send", "withdrawal")
SLOT_MINUTES = 15


def _slot(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(
        minute=moment.minute - moment.minute % SLOT_MINUTES, second=0, microsecond=0
    )


def upgrade() -> None:
    spending = op.create_table(
        "operation_spending",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("asset", sa.String(length=12), nullable=False),
        sa.Column("slot_start", UtcDateTime(timezone=True), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["identity_users.id"],
            name=op.f("fk_operation_spending_user_id_identity_users"),
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "asset", "slot_start", name=op.f("pk_operation_spending")
        ),
    )
    operations = sa.table(
        "operations",
        sa.column("user_id", sa.BigInteger()),
        sa.column("asset", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("created_at", UtcDateTime(timezone=True)),
        sa.column("amount_minor", sa.BigInteger()),
    )
    totals: dict[tuple[int, str, datetime], int] = defaultdict(int)
    rows = op.get_bind().execute(
        sa.select(
            operations.c.user_id,
            operations.c.asset,
            operations.c.created_at,
            operations.c.amount_minor,
        ).where(operations.c.kind.in_(SPENDING_KINDS))
    )
    for user_id, asset, created_at, amount_minor in rows:
        totals[(user_id, asset, _slot(created_at))] += amount_minor
    if totals:
        op.bulk_insert(
            spending,
            [
                {"user_id": u, "asset": a, "slot_start": s, "amount_minor": amount}
                for (u, a, s), amount in totals.items()
            ],
        )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_limits")
        batch_op.create_index(
            "ix_operations_user_failed",
            ["user_id", "status", "asset", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_user_failed")
        batch_op.create_index(
            "ix_operations_limits", ["user_id", "asset", "created_at"], unique=False
        )
    op.drop_table("operation_spending")
