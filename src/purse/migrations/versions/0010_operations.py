"""Money operations get a home of their own: the operation tables leave the wallet's names,
operation kinds are no longer a fixed CHECK list (each domain registers its kinds), and
funding sources move to the funding domain.

Tables are renamed, not copied, so every row and every reference to them is kept:

* ``wallet_operations`` -> ``operations`` (without the ``kind`` CHECK),
* ``wallet_operation_events`` -> ``operation_events``,
* ``wallet_accounts`` -> ``operation_accounts``,
* ``wallet_funding_sources`` -> ``funding_sources``.

PostgreSQL renames tables, constraints, indexes and sequences in place. SQLite renames
the table (which rewrites the foreign keys of other tables that point at it), then
rebuilds it from the definition below to give its constraints their new names; the
migration runs with SQLite's foreign key enforcement off for that (see purse.migrate).

Revision ID: 0010_operations
Revises: 0009_session_factors
Create Date: 2026-11-27 15:30:00
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

import purse.models

revision: str = "0010_operations"
down_revision: str | None = "0009_session_factors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UtcDateTime = purse.models.UtcDateTime


def _accounts(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "operation_accounts",
        metadata,
        sa.Column("owner", sa.String(length=48), nullable=False),
        sa.Column("asset", sa.String(length=12), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name="fk_operation_accounts_account_id_ledger_accounts",
        ),
        sa.PrimaryKeyConstraint("owner", "asset", name="pk_operation_accounts"),
        sa.UniqueConstraint("account_id", name="uq_operation_accounts_account_id"),
    )


def _funding_sources(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "funding_sources",
        metadata,
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_token", sa.String(length=128), nullable=False),
        sa.Column("brand", sa.String(length=48), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("holder_name_encrypted", sa.Text(), nullable=False),
        sa.Column("expiry_month", sa.Integer(), nullable=True),
        sa.Column("expiry_year", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('card', 'bank_account')", name="ck_funding_sources_kind"),
        sa.CheckConstraint("status IN ('active', 'removed')", name="ck_funding_sources_status"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["identity_users.id"], name="fk_funding_sources_user_id_identity_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_funding_sources"),
        sa.Index("ix_funding_sources_user_id", "user_id"),
    )


def _operations(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "operations",
        metadata,
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("counterparty_user_id", BigId, nullable=True),
        sa.Column("asset", sa.String(length=12), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("to_asset", sa.String(length=12), nullable=True),
        sa.Column("to_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("rate", sa.String(length=40), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("funding_source_id", BigId, nullable=True),
        sa.Column("money_request_id", sa.BigInteger(), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_reference", sa.String(length=64), nullable=True),
        sa.Column("provider_stage", sa.String(length=16), nullable=True),
        sa.Column("provider_attempts", sa.Integer(), nullable=False),
        sa.Column("provider_checked_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("ledger_group_id", sa.BigInteger(), nullable=True),
        sa.Column("hold_transfer_id", sa.BigInteger(), nullable=True),
        sa.Column("hold_expires_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("initiator_kind", sa.String(length=32), nullable=False),
        sa.Column("initiator_id", sa.String(length=128), nullable=False),
        sa.Column("authenticated_by", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("provider_due_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'failed')", name="ck_operations_status"
        ),
        sa.CheckConstraint("amount_minor > 0", name="ck_operations_amount_positive"),
        sa.ForeignKeyConstraint(
            ["counterparty_user_id"],
            ["identity_users.id"],
            name="fk_operations_counterparty_user_id_identity_users",
        ),
        sa.ForeignKeyConstraint(
            ["funding_source_id"],
            ["funding_sources.id"],
            name="fk_operations_funding_source_id_funding_sources",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["identity_users.id"], name="fk_operations_user_id_identity_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
        sa.UniqueConstraint("reference", name="uq_operations_reference"),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_operations_user_id_idempotency_key"
        ),
        sa.Index("ix_operations_counterparty", "counterparty_user_id", "id"),
        sa.Index("ix_operations_limits", "user_id", "asset", "created_at"),
        sa.Index("ix_operations_provider_due", "status", "provider_due_at"),
        sa.Index("ix_operations_user", "user_id", "id"),
    )


def _events(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "operation_events",
        metadata,
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("operation_id", BigId, nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name="fk_operation_events_operation_id_operations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_operation_events"),
        sa.Index("ix_operation_events_operation_id", "operation_id"),
    )


# old table, new table, its definition, {old name: new name} of constraints and indexes,
# constraints that go, and whether it has an id sequence (PostgreSQL).
_TABLES: tuple[
    tuple[
        str,
        str,
        Callable[[sa.MetaData], sa.Table],
        dict[str, str],
        dict[str, str],
        tuple[str, ...],
        bool,
    ],
    ...,
] = (
    (
        "wallet_accounts",
        "operation_accounts",
        _accounts,
        {
            "pk_wallet_accounts": "pk_operation_accounts",
            "uq_wallet_accounts_account_id": "uq_operation_accounts_account_id",
            "fk_wallet_accounts_account_id_ledger_accounts": (
                "fk_operation_accounts_account_id_ledger_accounts"
            ),
        },
        {},
        (),
        False,
    ),
    (
        "wallet_funding_sources",
        "funding_sources",
        _funding_sources,
        {
            "pk_wallet_funding_sources": "pk_funding_sources",
            "ck_wallet_funding_sources_kind": "ck_funding_sources_kind",
            "ck_wallet_funding_sources_status": "ck_funding_sources_status",
            "fk_wallet_funding_sources_user_id_identity_users": (
                "fk_funding_sources_user_id_identity_users"
            ),
        },
        {"ix_wallet_funding_sources_user_id": "ix_funding_sources_user_id"},
        (),
        True,
    ),
    (
        "wallet_operations",
        "operations",
        _operations,
        {
            "pk_wallet_operations": "pk_operations",
            "uq_wallet_operations_reference": "uq_operations_reference",
            "uq_wallet_operations_user_id_idempotency_key": (
                "uq_operations_user_id_idempotency_key"
            ),
            "ck_wallet_operations_status": "ck_operations_status",
            "ck_wallet_operations_amount_positive": "ck_operations_amount_positive",
            "fk_wallet_operations_counterparty_user_id_identity_users": (
                "fk_operations_counterparty_user_id_identity_users"
            ),
            "fk_wallet_operations_funding_source_id_wallet_funding_sources": (
                "fk_operations_funding_source_id_funding_sources"
            ),
            "fk_wallet_operations_user_id_identity_users": "fk_operations_user_id_identity_users",
        },
        {
            "ix_wallet_operations_counterparty": "ix_operations_counterparty",
            "ix_wallet_operations_limits": "ix_operations_limits",
            "ix_wallet_operations_provider_due": "ix_operations_provider_due",
            "ix_wallet_operations_user": "ix_operations_user",
        },
        ("ck_wallet_operations_kind",),
        True,
    ),
    (
        "wallet_operation_events",
        "operation_events",
        _events,
        {
            "pk_wallet_operation_events": "pk_operation_events",
            "fk_wallet_operation_events_operation_id_wallet_operations": (
                "fk_operation_events_operation_id_operations"
            ),
        },
        {"ix_wallet_operation_events_operation_id": "ix_operation_events_operation_id"},
        (),
        True,
    ),
)

# Foreign keys of the wallet's remaining tables that name the renamed table.
_REFERRING = (
    (
        "wallet_requests",
        "fk_wallet_requests_operation_id_wallet_operations",
        "fk_wallet_requests_operation_id_operations",
    ),
    (
        "wallet_fx_quotes",
        "fk_wallet_fx_quotes_operation_id_wallet_operations",
        "fk_wallet_fx_quotes_operation_id_operations",
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _upgrade_sqlite()
    else:
        _upgrade_postgresql()


def _upgrade_postgresql() -> None:
    for old, new, _define, constraints, indexes, dropped, has_sequence in _TABLES:
        op.rename_table(old, new)
        for name in dropped:
            op.execute(f'ALTER TABLE "{new}" DROP CONSTRAINT "{name}"')
        for old_name, new_name in constraints.items():
            op.execute(f'ALTER TABLE "{new}" RENAME CONSTRAINT "{old_name}" TO "{new_name}"')
        for old_name, new_name in indexes.items():
            op.execute(f'ALTER INDEX "{old_name}" RENAME TO "{new_name}"')
        if has_sequence:
            op.execute(f'ALTER SEQUENCE "{old}_id_seq" RENAME TO "{new}_id_seq"')
    for table, old_name, new_name in _REFERRING:
        op.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{old_name}" TO "{new_name}"')


def _upgrade_sqlite() -> None:
    # Referring tables keep their foreign keys' old names on SQLite, where a name lives
    # only in the table's CREATE statement and nothing looks it up.
    for old, new, define, _constraints, indexes, _dropped, _has_sequence in _TABLES:
        for old_name in indexes:
            op.drop_index(old_name, table_name=old)
        op.rename_table(old, new)
        with op.batch_alter_table(new, recreate="always", copy_from=define(sa.MetaData())):
            pass


def downgrade() -> None:
    """The old names come back; the ``kind`` CHECK does not, as kinds are no longer four."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        for table, old_name, new_name in _REFERRING:
            op.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{new_name}" TO "{old_name}"')
    for old, new, define, constraints, indexes, _dropped, has_sequence in reversed(_TABLES):
        if sqlite:
            for new_name in indexes.values():
                op.drop_index(new_name, table_name=new)
            op.rename_table(new, old)
            columns = {index.name: index.columns.keys() for index in define(sa.MetaData()).indexes}
            for old_name, new_name in indexes.items():
                op.create_index(old_name, old, columns[new_name])
            continue
        op.rename_table(new, old)
        for old_name, new_name in constraints.items():
            op.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{new_name}" TO "{old_name}"')
        for old_name, new_name in indexes.items():
            op.execute(f'ALTER INDEX "{new_name}" RENAME TO "{old_name}"')
        if has_sequence:
            op.execute(f'ALTER SEQUENCE "{new}_id_seq" RENAME TO "{old}_id_seq"')
