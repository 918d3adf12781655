"""Schema migrations (Alembic), run by ``purse db upgrade`` and by ``serve`` on SQLite."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData

from purse.db import Database


def target_metadata() -> MetaData:
    """Every table of every domain (importing the models registers them)."""
    import purse.audit.models
    import purse.funding.models
    import purse.identity.models
    import purse.ledger.models
    import purse.merchants.models
    import purse.notify.models
    import purse.operations.models
    import purse.wallet.models  # noqa: F401
    from purse.models import Base

    return Base.metadata


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("purse") / "migrations"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision``, in one transaction.

    On SQLite, foreign key enforcement is off while migrations run: rebuilding a
    table (SQLite's only way to change a constraint) drops it while other tables
    still refer to it. It can only be switched outside a transaction, so it is set
    on the connection before the transaction starts; afterwards every foreign key
    is checked, and a migration that left one dangling is rolled back.
    """
    config = _config()
    with database.engine.connect() as connection:
        if database.is_sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if database.is_sqlite:
                    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if dangling:
                        raise RuntimeError(f"a migration left dangling foreign keys: {dangling}")
        finally:
            if database.is_sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def is_current(database: Database) -> bool:
    return current_revision(database) == head_revision()
