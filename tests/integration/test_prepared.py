"""Prepared statements give what ``session.execute`` gives, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import registry

from factories import make_settings
from purse import prepared
from purse.db import Database
from purse.errors import DatabaseUnavailable
from purse.models import UtcDateTime
from purse.prepared import Prepared

_metadata = MetaData()
_notes = Table(
    "test_prepared_notes",
    _metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("owner", String(20), nullable=False, unique=True),
    Column("status", String(10), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("remark", String(40), nullable=True),
)
_with_default = Table(
    "test_prepared_defaults",
    _metadata,
    Column("id", BigInteger, primary_key=True),
    Column("label", String(10), nullable=False, default="plain"),
)

INSERT = Prepared(insert(_notes).returning(_notes.c.id, _notes.c.at))
BY_OWNER = Prepared(
    select(_notes.c.id, _notes.c.amount_minor, _notes.c.at, _notes.c.remark).where(
        _notes.c.owner == bindparam("owner")
    )
)
# A value written into the statement ("open") travels with it.
OPEN_TOTAL = Prepared(
    select(_notes.c.owner, _notes.c.amount_minor)
    .where(_notes.c.status == "open")
    .order_by(_notes.c.owner)
)
ADD = Prepared(
    update(_notes)
    .where(_notes.c.owner == bindparam("b_owner"))
    .values(amount_minor=_notes.c.amount_minor + bindparam("b_amount"))
)

AT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def notes(database: Database) -> Iterator[Database]:
    _metadata.create_all(database.engine)
    try:
        yield database
    finally:
        _metadata.drop_all(database.engine)


def _row(owner: str, *, amount: int = 100, status: str = "open") -> dict[str, object]:
    return {"owner": owner, "status": status, "amount_minor": amount, "at": AT, "remark": None}


def test_rows_read_back_as_sqlalchemy_reads_them(notes: Database) -> None:
    def write(session):  # type: ignore[no-untyped-def]
        return INSERT.first(session, _row("ana", amount=2**62))

    written = notes.run(write)
    assert written.at == AT and written.at.tzinfo is not None

    def read(session):  # type: ignore[no-untyped-def]
        fast = BY_OWNER.first(session, {"owner": "ana"})
        plain = session.execute(BY_OWNER.statement, {"owner": "ana"}).one()
        return fast, plain

    fast, plain = notes.run(read, write=False)
    assert tuple(fast) == tuple(plain) == (written.id, 2**62, AT, None)
    assert fast._asdict() == plain._asdict()
    assert notes.run(lambda s: BY_OWNER.first(s, {"owner": "nobody"}), write=False) is None


def test_values_in_the_statement_many_rows_and_row_counts(notes: Database) -> None:
    def write(session):  # type: ignore[no-untyped-def]
        INSERT.many(session, [_row("b"), _row("a", amount=7), _row("c", status="closed")])
        changed = ADD.execute(session, {"b_owner": "a", "b_amount": 5})
        missed = ADD.execute(session, {"b_owner": "nobody", "b_amount": 5})
        return changed, missed, OPEN_TOTAL.all(session, {})

    changed, missed, open_rows = notes.run(write)
    assert (changed, missed) == (1, 0)
    assert [tuple(row) for row in open_rows] == [("a", 12), ("b", 100)]


def test_driver_errors_are_sqlalchemys_and_change_nothing(notes: Database) -> None:
    notes.run(lambda session: INSERT.first(session, _row("dup")))

    def again(session):  # type: ignore[no-untyped-def]
        INSERT.first(session, _row("dup"))

    with pytest.raises(IntegrityError):
        notes.run(again)

    def many(session):  # type: ignore[no-untyped-def]
        INSERT.many(session, [_row("fresh"), _row("dup")])

    with pytest.raises(IntegrityError):
        notes.run(many)
    owners = notes.run(
        lambda session: session.execute(select(_notes.c.owner)).scalars().all(), write=False
    )
    assert owners == ["dup"]


def test_pending_orm_changes_are_flushed_first(notes: Database) -> None:
    class Note:
        def __init__(self, **values: object) -> None:
            self.__dict__.update(values)

    registry().map_imperatively(Note, _notes)

    def write(session):  # type: ignore[no-untyped-def]
        session.add(Note(**_row("orm")))  # pending until a flush
        return BY_OWNER.first(session, {"owner": "orm"})

    assert notes.run(write).amount_minor == 100


def test_in_lists_of_any_length(notes: Database) -> None:
    # Items go through the column type too: timestamps are compared as stored.
    among = Prepared(
        select(_notes.c.owner)
        .where(_notes.c.status == "open", _notes.c.at.in_(bindparam("moments", expanding=True)))
        .order_by(_notes.c.owner)
    )
    later = AT + timedelta(seconds=1)

    def run(session):  # type: ignore[no-untyped-def]
        INSERT.many(
            session,
            [_row("a"), {**_row("b"), "at": later}, {**_row("c", status="closed"), "at": later}],
        )
        return [
            [row.owner for row in among.all(session, {"moments": moments})]
            for moments in ([AT], [later, AT, AT - timedelta(days=1)], [], [later])
        ]

    assert notes.run(run) == [["a"], ["a", "b"], [], ["b"]]


def test_python_side_defaults_are_refused(notes: Database) -> None:
    defaulted = Prepared(insert(_with_default))
    with pytest.raises(TypeError, match="default"):
        notes.run(lambda session: defaulted.execute(session, {"id": 1}))


def test_under_statement_events_it_runs_through_sqlalchemy(notes: Database) -> None:
    seen: list[str] = []

    def watch(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(notes.engine, "before_cursor_execute", watch)
    try:
        written = notes.run(lambda session: INSERT.first(session, _row("watched")))
        found = notes.run(lambda s: BY_OWNER.first(s, {"owner": "watched"}), write=False)
    finally:
        event.remove(notes.engine, "before_cursor_execute", watch)
    assert found.id == written.id and found.at == AT
    assert sum("test_prepared_notes" in statement for statement in seen) == 2


def test_savepoints_run_on_the_driver_and_roll_back_alone(notes: Database) -> None:
    # The dialect's SAVEPOINT, RELEASE and ROLLBACK TO are the driver's (driver_savepoints):
    # a nested block that fails undoes its own rows only, one that succeeds is kept, and
    # an error in the savepoint SQL itself is SQLAlchemy's.
    def run(session):  # type: ignore[no-untyped-def]
        INSERT.first(session, _row("outer"))
        with pytest.raises(IntegrityError), session.begin_nested():
            INSERT.first(session, _row("inner"))
            INSERT.first(session, _row("outer"))
        with session.begin_nested():
            INSERT.first(session, _row("kept"))
        return OPEN_TOTAL.all(session, {})

    assert [row.owner for row in notes.run(run)] == ["kept", "outer"]
    with pytest.raises(DBAPIError, match="no_such_savepoint"):
        notes.run(
            lambda session: session.connection().dialect.do_release_savepoint(
                session.connection(), "no_such_savepoint"
            )
        )


def test_a_later_timestamp_compares_as_later(notes: Database) -> None:
    # SQLite stores timestamps as text: the bind processor must write what the column
    # type writes, or comparisons in SQL go wrong.
    later = Prepared(
        select(_notes.c.owner).where(_notes.c.at > bindparam("after")).order_by(_notes.c.owner)
    )

    def write(session):  # type: ignore[no-untyped-def]
        INSERT.first(session, _row("early"))
        INSERT.first(session, {**_row("late"), "at": AT + timedelta(microseconds=1)})
        session.execute(insert(_notes).values({**_row("core"), "at": AT + timedelta(days=1)}))
        return [row.owner for row in later.all(session, {"after": AT})]

    assert notes.run(write) == ["core", "late"]


def test_compiled_forms_stay_bounded(notes: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared, "PLANS_MAX", 4)
    among = Prepared(
        select(_notes.c.owner)
        .where(_notes.c.owner.in_(bindparam("owners", expanding=True)))
        .order_by(_notes.c.owner)
    )

    def run(session):  # type: ignore[no-untyped-def]
        INSERT.many(session, [_row(f"o{i}") for i in range(10)])
        found = []
        for n in range(1, 11):
            found.append(len(among.all(session, {"owners": [f"o{i}" for i in range(n)]})))
            assert len(among._plans) <= 4
        return found

    assert notes.run(run) == list(range(1, 11))


def test_a_lost_connection_is_invalidated_and_unavailable(postgres_url: str) -> None:
    """PostgreSQL ends the connection mid-transaction (a restart, a failover): the error
    says the connection is gone, purse answers 503 database_unavailable, and the pool
    does not hand the dead connection out again."""
    database = Database(make_settings(postgres_url, db_pool_size=1))
    try:
        _metadata.create_all(database.engine)
        invalidated: list[bool] = []

        def killed(session):  # type: ignore[no-untyped-def]
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with database.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            try:
                BY_OWNER.first(session, {"owner": "anyone"})
            except DBAPIError as error:
                invalidated.append(error.connection_invalidated)
                raise

        with pytest.raises(DatabaseUnavailable):
            database.run(killed)
        assert invalidated == [True]
        assert database.run(lambda s: BY_OWNER.first(s, {"owner": "anyone"})) is None
    finally:
        _metadata.drop_all(database.engine)
        database.dispose()
