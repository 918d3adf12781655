"""Monthly balance checkpoints, so a statement of an old month costs that month only.

* ``ledger_month_balances`` (account, month start): the account's posted debits
  and credits before that instant. Empty here: the ledger's month job fills it,
  oldest month first, once each month has been over for the grace period.
* ``ledger_chain`` gains how far the job has got: ``checkpoint_at`` (the newest
  month start closed: transfers dated at or before it are refused),
  ``checkpoint_from`` (the month start before it) and ``checkpoint_account_id``
  (the last account done while a month is being written).

Revision ID: 0014_month_balances
Revises: 0013_spending_totals
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0014_month_balances"
down_revision: str | None = "0013_spending_totals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UtcDateTime = purse.models.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "ledger_month_balances",
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("month_start", UtcDateTime(timezone=True), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_month_balances_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "month_start", name=op.f("pk_ledger_month_balances")),
    )
    with op.batch_alter_table("ledger_chain", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checkpoint_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("checkpoint_from", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("checkpoint_account_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_chain", schema=None) as batch_op:
        batch_op.drop_column("checkpoint_account_id")
        batch_op.drop_column("checkpoint_from")
        batch_op.drop_column("checkpoint_at")
    op.drop_table("ledger_month_balances")
