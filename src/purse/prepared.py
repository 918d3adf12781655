"""Statements on the hot path: SQLAlchemy Core, compiled once, run on the driver's cursor.

A payment runs about fifteen statements. SQLAlchemy executes a cached Core statement
in tens of microseconds of Python (an execution context, parameter processing, a
result object, events) where the driver alone takes a few: on a send that overhead
was a quarter of the CPU. :class:`Prepared` keeps the statement in Core, so its SQL
is still written once for both databases, and does only what the statement needs:

* the SQL is compiled once per dialect and set of inserted columns;
* parameters and results go through the column types' own bind and result
  processors (SQLite stores timestamps as text; purse's types encrypt or convert);
* driver errors come out as SQLAlchemy's (``IntegrityError``, ``OperationalError``),
  so retries and unique-key handling work as with ``session.execute``;
* the session is flushed first, as SQLAlchemy's autoflush would.

An ``IN`` list (an expanding parameter) is compiled once per length, each item a
parameter of its own. What it refuses, at the first use: columns whose values
SQLAlchemy computes at execution (Python-side defaults). Such statements stay on
``session.execute``.

While statement events are listened to (tests counting statements), it runs through
``session.execute`` instead, so what they count is what runs.

The same module runs a few things SQLAlchemy would otherwise do at a cost out of
proportion: raw SQL of purse's own (``run_driver_sql``, the ledger's bulk inserts) and
savepoints (``driver_savepoints``, one per use case in a group commit).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any] | None

# Compiled forms kept per statement (one per dialect, set of columns and IN-list length).
PLANS_MAX = 64


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # parameters in the order a positional driver takes them
    positional: bool
    binds: tuple[tuple[str, Processor], ...]  # parameters that need converting
    expanding: tuple[tuple[str, Processor], ...]  # IN lists, each item a parameter
    defaults: Mapping[str, Any]  # values written into the statement (``status == "failed"``)
    row: Any  # the named tuple class of a result row, None for no result
    results: tuple[Processor, ...]


class Prepared:
    """One Core statement, run in a session's transaction (or on a connection)."""

    __slots__ = ("_binds", "_expanding", "_plans", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement: Any = statement  # a SELECT, INSERT, UPDATE or DELETE
        self._binds = {
            element.key: element
            for element in visitors.iterate(cast(Any, statement))
            if isinstance(element, BindParameter)
        }
        # IN lists: compiled once per length, each item a parameter of its own.
        self._expanding = tuple(sorted(key for key, b in self._binds.items() if b.expanding))
        self._plans: dict[tuple[Any, ...], _Plan] = {}

    def _plan(self, dialect: Dialect, values: Mapping[str, Any]) -> _Plan:
        lengths = tuple(len(values[name]) for name in self._expanding)
        key = (dialect.name, frozenset(values), lengths)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._compile(dialect, frozenset(values), lengths)
            if len(self._plans) >= PLANS_MAX:  # IN lists of many lengths: stay bounded
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _compile(self, dialect: Dialect, keys: frozenset[str], lengths: tuple[int, ...]) -> _Plan:
        statement, options = self.statement, {}
        if self._expanding:
            # Stand-in values: the SQL keeps parameters; only the IN lists' lengths matter.
            statement = statement.params(
                {key: None for key, bind in self._binds.items() if bind.required}
                | {name: [None] * n for name, n in zip(self._expanding, lengths, strict=True)}
            )
            options = {"render_postcompile": True}
        compiled: Any = statement.compile(
            dialect=dialect, column_keys=sorted(keys), compile_kwargs=options
        )
        if compiled.literal_execute_params:
            raise TypeError("Prepared statements take no literal_execute parameters")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise TypeError("Prepared statements take no columns with Python-side defaults")
        if compiled.escaped_bind_names:
            raise TypeError("Prepared statements take plain parameter names")
        names = tuple(compiled.positiontup or ())
        if not dialect.positional:
            expanded = (
                f"{name}_{i}"
                for name, n in zip(self._expanding, lengths, strict=True)
                for i in range(1, n + 1)
            )
            if not all(f"%({name})s" in compiled.string for name in expanded):
                raise TypeError("an IN list was not rendered as parameters")
        # Values written into the statement (``status == "failed"``); the stand-in
        # values given to compile the IN lists are not among them.
        defaults = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not self._binds.get(bind.key, bind).required and not bind.expanding
        }
        binds: list[tuple[str, Processor]] = []
        expanding: list[tuple[str, Processor]] = []
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if name in self._expanding:
                expanding.append((name, processor))
            elif processor is not None:
                binds.append((name, processor))
        # A SELECT's columns, or what an INSERT, UPDATE or DELETE returns.
        columns = list(getattr(self.statement, "exported_columns", ()))
        row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None
        return _Plan(
            sql=compiled.string,
            names=names,
            positional=dialect.positional,
            binds=tuple(binds),
            expanding=tuple(expanding),
            defaults=defaults,
            row=row,
            results=tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
            ),
        )

    def _parameters(self, plan: _Plan, given: Mapping[str, Any]) -> Any:
        values = {**plan.defaults, **given} if plan.defaults else dict(given)
        for name, processor in plan.binds:
            if name in values:
                values[name] = processor(values[name])  # type: ignore[misc]
        for name, processor in plan.expanding:
            for i, item in enumerate(values.pop(name), start=1):
                values[f"{name}_{i}"] = item if processor is None else processor(item)
        if plan.positional:
            return tuple(values[name] for name in plan.names)
        return values

    def _run(self, on: Session | Connection, values: Mapping[str, Any]) -> tuple[_Plan, Any]:
        connection = _connection(on)
        if connection.dispatch.before_cursor_execute or self._empty_list(values):
            return _WATCHED, on.execute(self.statement, values)
        plan = self._plan(connection.dialect, values)
        parameters = self._parameters(plan, values)
        return plan, _execute(connection, plan.sql, parameters)

    def _empty_list(self, values: Mapping[str, Any]) -> bool:
        # SQLAlchemy writes an empty IN as an expression that is false: leave it to it.
        return any(not values[name] for name in self._expanding)

    def execute(self, on: Session | Connection, values: Mapping[str, Any]) -> int:
        """Run it; returns the rows it changed (for an UPDATE or DELETE)."""
        plan, cursor = self._run(on, values)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def first(self, on: Session | Connection, values: Mapping[str, Any]) -> Any:
        """Its first row (a named tuple), or None."""
        plan, cursor = self._run(on, values)
        if plan is _WATCHED:
            return cursor.first()
        raw = cursor.fetchone()
        cursor.close()
        return None if raw is None else _row(plan, raw)

    def all(self, on: Session | Connection, values: Mapping[str, Any]) -> list[Any]:
        """Every row (named tuples)."""
        plan, cursor = self._run(on, values)
        if plan is _WATCHED:
            return list(cursor.all())
        rows = [_row(plan, raw) for raw in cursor.fetchall()]
        cursor.close()
        return rows

    def scalar(self, on: Session | Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the first row (an id RETURNING, a count), or None."""
        row = self.first(on, values)
        return None if row is None else row[0]

    def many(self, on: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once for each of ``rows`` (all with the same keys), with no result."""
        if not rows:
            return
        connection = _connection(on)
        if connection.dispatch.before_cursor_execute or self._expanding:
            on.execute(self.statement, list(rows))  # (IN lists in executemany: rare)
            return
        plan = self._plan(connection.dialect, rows[0])
        parameters = [self._parameters(plan, row) for row in rows]
        _execute(connection, plan.sql, parameters).close()


# What _run returns instead of a plan when the statement ran through the session.
_WATCHED = _Plan(
    sql="", names=(), positional=False, binds=(), expanding=(), defaults={}, row=None, results=()
)


def _connection(on: Session | Connection) -> Connection:
    if isinstance(on, Connection):
        return on
    on.flush()  # what SQLAlchemy's autoflush does before a statement
    return on.connection()


def _row(plan: _Plan, raw: Sequence[Any]) -> Any:
    assert plan.row is not None
    return plan.row._make(
        value if processor is None else processor(value)
        for processor, value in zip(plan.results, raw, strict=True)
    )


# psycopg runs executemany in a pipeline: for a few rows (a payment's timeline events,
# its transfer) that cost more than running them one by one, in CPU (40 against 19 us
# for one row, 53 against 36 for two, measured) and in time.
_EACH_ROWS_MAX = 4


def _execute(connection: Connection, sql: str, parameters: Any) -> Any:
    """Run ``sql`` on a cursor of the connection's driver; an error as SQLAlchemy raises it.

    A lost connection is invalidated, as SQLAlchemy does, so the pool does not hand it
    out again; the error says so (``connection_invalidated``), and purse answers it as
    ``database_unavailable``.
    """
    dialect = connection.dialect
    driver_connection = connection.connection.dbapi_connection
    assert driver_connection is not None
    cursor = driver_connection.cursor()
    try:
        if isinstance(parameters, list) and (
            len(parameters) > _EACH_ROWS_MAX or dialect.name == "sqlite"
        ):
            cursor.executemany(sql, parameters)
        elif isinstance(parameters, list):
            for row in parameters:
                cursor.execute(sql, row)
        else:
            cursor.execute(sql, parameters)
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, driver_connection, cursor)
        with suppress(dialect.loaded_dbapi.Error):
            cursor.close()
        if lost:
            connection.invalidate(error)
        wrapped: Exception = DBAPIError.instance(
            sql,
            parameters,
            error,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,  # parameters are personal data, some encrypted
            connection_invalidated=lost,
            dialect=dialect,
            ismulti=isinstance(parameters, list),
        )
        raise wrapped from error
    return cursor


def driver_savepoints(dialect: Dialect) -> None:
    """Let ``dialect`` run SAVEPOINT, RELEASE and ROLLBACK TO on the driver's cursor.

    SQLAlchemy compiles a savepoint's SQL afresh each time, as each has a name of its
    own, and a group commit runs one per use case: that compiling cost more than a
    payment's own statements. The SQL is the same one line; errors come out as
    SQLAlchemy's, as with :class:`Prepared`. While statement events are listened to,
    SQLAlchemy's own methods run, so what is counted is what runs.
    """
    quote = dialect.identifier_preparer.quote

    def runner(verb: str) -> Callable[[Connection, str], None]:
        def run(connection: Connection, name: str) -> None:
            run_driver_sql(connection, f"{verb} {quote(name)}")

        return run

    # Instance attributes: this engine's dialect only, not every dialect of its kind.
    dialect.do_savepoint = runner("SAVEPOINT")  # type: ignore[method-assign,assignment]
    dialect.do_release_savepoint = runner("RELEASE SAVEPOINT")  # type: ignore[method-assign,assignment]
    dialect.do_rollback_to_savepoint = runner("ROLLBACK TO SAVEPOINT")  # type: ignore[method-assign,assignment]


def run_driver_sql(
    connection: Connection, sql: str, parameters: Sequence[Any] | list[Any] = ()
) -> None:
    """``connection.exec_driver_sql`` without SQLAlchemy's per-execution work.

    ``parameters`` is one row, or a list of rows for executemany. Errors come out as
    SQLAlchemy's; while statement events are listened to, it is ``exec_driver_sql``.
    """
    if connection.dispatch.before_cursor_execute:
        connection.exec_driver_sql(sql, parameters)
        return
    _execute(connection, sql, parameters).close()
