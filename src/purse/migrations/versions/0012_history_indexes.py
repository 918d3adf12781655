"""History that stays flat: an index for each list and page query.

* ``ix_operations_user_status``: a user's pending operations, newest first,
  without reading their whole history to find the few that are pending.
* ``ix_wallet_requests_requester`` and ``ix_wallet_requests_payer`` (user, id)
  replace the single-column indexes: each side of "requests made by or of me"
  is then read newest first along its index, on PostgreSQL as on SQLite.
* ``ix_ledger_transfers_debit_time`` and ``ix_ledger_transfers_credit_time``
  (account, created_at) replace (account, id), which no query used: a monthly
  statement reads one account's postings of a month, and its opening balance
  the postings since the month began, each a range of these indexes.

Revision ID: 0012_history_indexes
Revises: 0011_access_grants
Create Date: 2026-11-27 19:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_history_indexes"
down_revision: str | None = "0011_access_grants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_operations_user_status", ["user_id", "status", "id"], unique=False
        )
    with op.batch_alter_table("wallet_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_requests_requester_id")
        batch_op.drop_index("ix_wallet_requests_payer_id")
        batch_op.create_index("ix_wallet_requests_requester", ["requester_id", "id"], unique=False)
        batch_op.create_index("ix_wallet_requests_payer", ["payer_id", "id"], unique=False)
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_debit")
        batch_op.drop_index("ix_ledger_transfers_credit")
        batch_op.create_index(
            "ix_ledger_transfers_debit_time", ["debit_account_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transfers_credit_time", ["credit_account_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_credit_time")
        batch_op.drop_index("ix_ledger_transfers_debit_time")
        batch_op.create_index(
            "ix_ledger_transfers_credit", ["credit_account_id", "id"], unique=False
        )
        batch_op.create_index("ix_ledger_transfers_debit", ["debit_account_id", "id"], unique=False)
    with op.batch_alter_table("wallet_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_requests_payer")
        batch_op.drop_index("ix_wallet_requests_requester")
        batch_op.create_index("ix_wallet_requests_payer_id", ["payer_id"], unique=False)
        batch_op.create_index("ix_wallet_requests_requester_id", ["requester_id"], unique=False)
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_user_status")
