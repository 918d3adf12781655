"""Shared fixtures: both databases, a fresh schema per test, the ledger check after each.

Every test that takes ``database`` runs twice, on SQLite and on PostgreSQL. Each
gets its own database, cloned from a migrated template, so tests never share
committed state. After the test, ``verify_ledger`` must find nothing wrong.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from factories import make_settings, seal_and_check
from pgserver import PostgresServer, remove_server, start_server
from purse import migrate
from purse.assembly import Purse, assemble
from purse.db import Database

# Every test that takes a database runs on each of these. The fast lane (scripts/fast)
# sets PURSE_TEST_DATABASES=sqlite; CI (scripts/test) runs both.
DATABASES = [
    name.strip()
    for name in os.environ.get("PURSE_TEST_DATABASES", "sqlite,postgres").split(",")
    if name.strip() in ("sqlite", "postgres")
] or ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The throwaway server of this run (None when PURSE_TEST_POSTGRES_URL names another)."""
    if "postgres" not in DATABASES:
        pytest.skip("PURSE_TEST_DATABASES leaves PostgreSQL out (the fast lane)")
    if os.environ.get("PURSE_TEST_POSTGRES_URL"):
        yield None
        return
    server = start_server()
    try:
        yield server
    finally:
        remove_server(server)


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_server: PostgresServer | None) -> str:
    return postgres_server.url() if postgres_server else os.environ["PURSE_TEST_POSTGRES_URL"]


def _replace_dbname(url: str, dbname: str) -> str:
    base, _, query = url.partition("?")
    head, _, _old = base.rpartition("/")
    return f"{head}/{dbname}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    name = f"purse_template_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database = Database(make_settings(_replace_dbname(postgres_admin_url, name)))
    migrate.upgrade(database)
    database.dispose()
    yield name
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(make_settings(f"sqlite:///{path}"))
    migrate.upgrade(database)
    database.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "purse.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    name = f"purse_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield _replace_dbname(postgres_admin_url, name)
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database of its own; the ledger must verify clean afterwards."""
    db = Database(make_settings(database_url))
    try:
        yield db
        report = seal_and_check(db)
        assert report.ok, f"ledger check failed after the test: {report.problems}"
    finally:
        db.dispose()


@pytest.fixture
def purse(database_url: str) -> Iterator[Purse]:
    """purse assembled on a database of its own, its simulator's bank settling at once;
    everything ``purse ledger verify`` checks must pass afterwards."""
    db = Database(make_settings(database_url, simulator_settle_seconds=0))
    try:
        yield assemble(db.settings, database=db)
        report = seal_and_check(db)
        assert report.ok, f"ledger check failed after the test: {report.problems}"
    finally:
        db.dispose()
