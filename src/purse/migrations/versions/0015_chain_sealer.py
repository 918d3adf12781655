"""The ledger's hash chain comes off the row every transfer locked (PostgreSQL).

* ``ledger_transfers.chain_seq``: the transfer's position in the hash chain, set
  when it is sealed; ``hash`` is NULL until then. Every transfer written so far
  was chained in id order, so its position is its id.
* ``ix_ledger_transfers_unsealed``: the transfers waiting for the sealer, in id
  order (a partial index: it holds only those).
* ``ledger_chain.last_transfer_id`` becomes ``last_chain_seq``: the chain's
  length, the position of the last transfer sealed.
* PostgreSQL: transfer ids come from the sequence ``ledger_transfer_ids`` instead
  of the chain head, starting after the last id handed out.

Revision ID: 0015_chain_sealer
Revises: 0014_month_balances
Create Date: 2026-12-07 22:30:00
"""

from collections.abc import Sequence
from datetime import UTC
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

revision: str = "0015_chain_sealer"
down_revision: str | None = "0014_month_balances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
    # Until now the chain ran in id order. (Ids are gapless unless this database came back
    # down from here on PostgreSQL; see downgrade.)
    op.execute(
        "UPDATE ledger_transfers SET chain_seq = places.place FROM "
        "(SELECT id, row_number() OVER (ORDER BY id) AS place FROM ledger_transfers) AS places "
        "WHERE ledger_transfers.id = places.id"
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_transfers_chain_seq"), ["chain_seq"], unique=True
        )
        batch_op.create_index(
            "ix_ledger_transfers_unsealed",
            ["id"],
            unique=False,
            sqlite_where=sa.text("chain_seq IS NULL"),
            postgresql_where=sa.text("chain_seq IS NULL"),
        )
    with op.batch_alter_table("ledger_chain", schema=None) as batch_op:
        batch_op.alter_column("last_transfer_id", new_column_name="last_chain_seq")
    if op.get_context().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE ledger_transfer_ids AS bigint")
        op.execute(
            "SELECT setval('ledger_transfer_ids', "
            "COALESCE((SELECT max(id) FROM ledger_transfers), 0) + 1, false)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _chain_in_id_order(op.get_bind())
        op.execute("DROP SEQUENCE ledger_transfer_ids")
    with op.batch_alter_table("ledger_chain", schema=None) as batch_op:
        batch_op.alter_column("last_chain_seq", new_column_name="last_transfer_id")
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_unsealed")
        batch_op.drop_index(batch_op.f("ix_ledger_transfers_chain_seq"))
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("chain_seq")


def _chain_in_id_order(connection: sa.Connection) -> None:
    """Link every transfer again in id order, as the ledger before this revision did.

    On SQLite the chain is in id order already. On PostgreSQL the sealer's order is its
    own, and some transfers may be waiting for it. Ids drawn from the sequence can have
    gaps (a batch that rolled back), which the ledger before this revision reports.
    """
    from purse.ledger.sealer import link  # the same link as every version's verify

    rows = connection.execute(sa.text("SELECT * FROM ledger_transfers ORDER BY id")).all()
    previous_hash, links = "0" * 64, []
    for row in rows:
        fields = row._asdict()
        for name in ("created_at", "expires_at"):
            if fields[name] is not None:
                fields[name] = fields[name].astimezone(UTC)
        previous_hash = link(previous_hash, SimpleNamespace(**fields))
        links.append({"id": row.id, "hash": previous_hash})
    if links:
        connection.execute(
            sa.text("UPDATE ledger_transfers SET hash = :hash WHERE id = :id"), links
        )
    connection.execute(
        sa.text("UPDATE ledger_chain SET last_chain_seq = :last, head_hash = :hash WHERE id = 1"),
        {"last": rows[-1].id if rows else 0, "hash": previous_hash},
    )
