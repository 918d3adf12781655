"""Query plans in tests: capture the SELECTs a block of code sends, and say which of them
read a whole table or sort (see tests/integration/test_history_queries.py for why the
PostgreSQL plans are asked with sequential scans and sorts switched off)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from purse.db import Database
from purse.models import Base

_Captured = list[tuple[str, Any]]


@contextmanager
def captured_selects(engine: Engine) -> Iterator[_Captured]:
    """Every SELECT sent to the database inside the block, with its parameters."""
    seen: _Captured = []

    def record(
        _connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plan(database: Database, statement: str, parameters: Any) -> list[str]:
    """The database's plan of ``statement``, one line per step."""

    def explain(session: Session) -> list[str]:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return [str(row[3]) for row in rows]
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_sort = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return [str(row[0]) for row in rows]

    return database.run(explain, write=False)


# "SCAN <table>" reads a whole table (or a whole index of it); scans of constant rows
# and subqueries (SQLAlchemy writes an empty IN list as one) read no table.
_SQLITE_FAULTS = (
    re.compile(rf"^SCAN ({'|'.join(Base.metadata.tables)})\b"),
    re.compile(r"USE TEMP B-TREE"),  # rows sorted (or grouped) after reading them all
)

_POSTGRES_FAULTS = (
    re.compile(r"Seq Scan on"),
    re.compile(r"(^|->\s+)(Incremental )?Sort\s+\("),  # a Sort node; "Sort Key:" lines are not
)


def _unbounded_index_scan(steps: list[str]) -> bool:
    """A PostgreSQL index scan node without an ``Index Cond``: the whole index is read."""
    for index, step in enumerate(steps):
        if re.search(r"Index (Only )?Scan", step):
            details = []
            for following in steps[index + 1 :]:
                if "->" in following:
                    break
                details.append(following)
            if not any("Index Cond" in detail for detail in details):
                return True
    return False


def faults(database: Database, selects: _Captured) -> list[tuple[str, list[str]]]:
    """Each captured query whose plan reads a whole table or sorts, with that plan."""
    sqlite = database.engine.dialect.name == "sqlite"
    patterns = _SQLITE_FAULTS if sqlite else _POSTGRES_FAULTS
    found = []
    for statement, parameters in selects:
        steps = plan(database, statement, parameters)
        if any(pattern.search(step) for step in steps for pattern in patterns) or (
            not sqlite and _unbounded_index_scan(steps)
        ):
            found.append((statement, steps))
    return found
