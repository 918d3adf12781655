"""Fresh databases for each mode: a temporary SQLite file, or a throwaway local PostgreSQL one."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from purse import migrate
from purse.bench.workload import ASSET, FUNDING_MINOR, INITIATOR, Accounts, Target
from purse.db import Database
from purse.ledger import service
from purse.ledger.rules import (
    DEFAULT_LIMITS,
    GroupRequest,
    TransferRequest,
)
from purse.settings import Environment, Settings

SECRET_KEY: Final = SecretStr("b" * 40)


SQLITE_BUSY_TIMEOUT_SECONDS: Final = 30.0


_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})


class DatabaseFactory:
    """Hands out fresh, empty databases beside ``database_url`` and removes them."""

    def __init__(self, database_url: str | None) -> None:
        self.url: URL | None = None
        self.admin_conninfo: str | None = None
        self.sqlite_base: Path | None = None
        self.temp_dir: Path | None = None
        if database_url is not None and not database_url.startswith("sqlite"):
            url = make_url(database_url)
            if url.get_backend_name() not in {"postgresql", "postgres"}:
                raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
            self.url = url
            self.admin_conninfo = make_conninfo(
                url.set(drivername="postgresql").render_as_string(hide_password=False)
            )
            _require_local_postgres(self.admin_conninfo)
        elif database_url is not None:
            _, _, path = database_url.partition(":///")
            if path and path != ":memory:":
                self.sqlite_base = Path(path)

    @property
    def backend(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    @contextmanager
    def fresh(self, label: str) -> Iterator[Target]:
        """A new database for one mode, removed when the block ends."""
        if self.url is None:
            path = self._new_sqlite_path(label)
            try:
                yield Target(database_url=f"sqlite:///{path}", sqlite_path=path)
            finally:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        assert self.admin_conninfo is not None
        name = f"purse_bench_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin_conninfo, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield Target(
                database_url=self.url.set(database=name).render_as_string(hide_password=False),
                conninfo=make_conninfo(self.admin_conninfo, dbname=name),
            )
        finally:
            with psycopg.connect(self.admin_conninfo, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def _new_sqlite_path(self, label: str) -> Path:
        if self.sqlite_base is not None:
            base = self.sqlite_base
        else:
            if self.temp_dir is None:
                self.temp_dir = Path(tempfile.mkdtemp(prefix="purse-bench-"))
            base = self.temp_dir / "bench.db"
        while True:
            path = base.with_name(f"{base.name}.bench-{label}-{secrets.token_hex(4)}")
            if not any(Path(f"{path}{s}").exists() for s in ("", "-wal", "-shm", "-journal")):
                return path

    def server_version(self) -> str | None:
        if self.admin_conninfo is None:
            return None
        with psycopg.connect(self.admin_conninfo, autocommit=True) as admin:
            row = admin.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


def _require_local_postgres(conninfo: str) -> None:
    """The bench creates and drops databases: only on a server on this machine."""
    params = conninfo_to_dict(conninfo)
    hosts = [h for h in str(params.get("host") or "").split(",") if h]
    hosts += [h for h in str(params.get("hostaddr") or "").split(",") if h]
    for host in hosts:
        if not (host.startswith("/") or host.startswith("@") or host in _LOCAL_HOSTS):
            raise ValueError(
                f"the ledger bench runs against a local PostgreSQL only "
                f"(unix socket or loopback), not {host!r}"
            )


def purse_database(target: Target, pool_size: int) -> Database:
    settings = Settings(
        database_url=target.database_url,
        secret_key=SECRET_KEY,
        env=Environment.test,
        db_pool_size=pool_size,
    )
    return Database(settings)


def set_up(db: Database, accounts: int) -> Accounts:
    """Migrate, open the accounts and fund every wallet from the system account."""
    migrate.upgrade(db)

    def open_all(session: Session) -> Accounts:
        def wallet(owner_kind: str, owner_id: str) -> int:
            return service.open_account(
                session,
                asset=ASSET,
                owner_kind=owner_kind,
                owner_id=owner_id,
                kind="wallet",
                debits_must_not_exceed_credits=True,
            ).id

        system = service.open_account(
            session,
            asset=ASSET,
            owner_kind="system",
            owner_id="bench",
            kind="funding",
            debits_must_not_exceed_credits=False,
        )
        wallets = tuple(wallet("user", f"bench-{i}") for i in range(accounts))
        return Accounts(system.id, wallets, hot_id=wallet("merchant", "bench-hot"))

    ids = db.run(open_all)
    funding = [
        GroupRequest(
            transfers=(
                TransferRequest(
                    reason_code="bench_funding",
                    debit_account_id=ids.system_id,
                    credit_account_id=wallet_id,
                    asset=ASSET,
                    amount_minor=FUNDING_MINOR,
                ),
            ),
            initiator=INITIATOR,
        )
        for wallet_id in ids.wallet_ids
    ]
    step = DEFAULT_LIMITS.batch_size_max
    for start in range(0, len(funding), step):
        for result in db.run(partial(service.submit, groups=funding[start : start + step])):
            result.raise_for_error()
    return ids


def warm_pool(db: Database, connections: int) -> None:
    """Open the pool's connections before the clock starts, as raw SQL does."""
    opened = [db.engine.connect() for _ in range(connections)]
    for connection in opened:
        connection.close()
