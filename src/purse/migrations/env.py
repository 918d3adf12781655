"""Alembic environment: runs on the connection purse hands it (see purse.migrate)."""

from alembic import context
from sqlalchemy import Connection

from purse.migrate import target_metadata

connection: Connection | None = context.config.attributes.get("connection")


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run_migrations(connection)
else:
    from purse.db import Database
    from purse.settings import Settings

    database = Database(Settings())
    with database.engine.connect() as fresh:
        run_migrations(fresh)
    database.dispose()
