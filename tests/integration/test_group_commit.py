"""Group commit on SQLite: use cases share a transaction, fail alone, and hear after COMMIT."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from factories import make_settings
from purse.db import Database, RetryTransaction
from purse.errors import DatabaseBusy


class Refused(Exception):
    pass


@pytest.fixture
def database(sqlite_url: str) -> Iterator[Database]:
    database = Database(make_settings(sqlite_url, db_wait_seconds=10))
    database.run(lambda s: s.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, who TEXT)")))
    yield database
    database.dispose()


def names(database: Database) -> set[str]:
    rows = database.run(lambda s: s.execute(text("SELECT who FROM notes")).scalars(), write=False)
    return set(rows)


def test_one_failing_use_case_in_a_batch_rolls_back_alone_and_nobody_hears_before_commit(
    database: Database,
) -> None:
    assert database.committer is not None
    commits: list[float] = []
    release, holding = threading.Event(), threading.Event()

    @event.listens_for(database.engine, "commit")
    def _slow_commit(connection: Any) -> None:
        if not connection.get_execution_options().get("purse_write"):
            return  # a read transaction (the callers' checks below)
        time.sleep(0.3)  # an answer given before the COMMIT would come inside this gap
        commits.append(time.monotonic())

    def holder(session: Session) -> str:
        # Keeps the committer busy until the others wait behind it: they become one batch.
        session.execute(text("INSERT INTO notes (who) VALUES ('holder')"))
        holding.set()
        release.wait(timeout=10)
        return "holder"

    def writer(who: str) -> Any:
        def use_case(session: Session) -> str:
            session.execute(text("INSERT INTO notes (who) VALUES (:who)"), {"who": who})
            if who == "refused":
                raise Refused()
            return who

        return use_case

    answers: dict[str, tuple[str, float, set[str]]] = {}

    def call(who: str, use_case: Any) -> None:
        try:
            result = database.run(use_case)
        except Refused:
            result = "Refused"
        # What another connection sees the moment the caller is answered.
        answers[who] = (result, time.monotonic(), names(database))

    first = threading.Thread(target=call, args=("holder", holder))
    first.start()
    assert holding.wait(timeout=10)
    deadline = time.monotonic() + 10
    batch = ["ana", "refused", "bo", "chen"]
    threads = [threading.Thread(target=call, args=(who, writer(who))) for who in batch]
    for thread in threads:
        thread.start()
    while database.committer.queued < len(batch) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert database.committer.queued == len(batch)
    release.set()
    for thread in [first, *threads]:
        thread.join(timeout=20)

    assert len(commits) == 2  # the holder's, then one for the four waiting behind it
    assert answers["refused"][0] == "Refused"
    assert {who: answers[who][0] for who in ("ana", "bo", "chen")} == {
        "ana": "ana",
        "bo": "bo",
        "chen": "chen",
    }
    assert names(database) == {"holder", "ana", "bo", "chen"}  # the refused one alone is gone
    for who, (_, answered_at, seen) in answers.items():
        assert answered_at >= commits[0 if who == "holder" else 1], who
        if who != "refused":
            assert who in seen, f"{who} was answered before its commit was visible"


def test_a_failed_commit_fails_every_use_case_of_the_batch(database: Database) -> None:
    @event.listens_for(database.engine, "commit")
    def _refuse(_connection: Any) -> None:
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="disk is full"):
        database.run(lambda s: s.execute(text("INSERT INTO notes (who) VALUES ('lost')")))
    event.remove(database.engine, "commit", _refuse)
    assert names(database) == set()


def test_a_use_case_that_waited_too_long_for_its_batch_is_refused_not_started(
    sqlite_url: str,
) -> None:
    database = Database(make_settings(sqlite_url, db_wait_seconds=0.2))
    started: list[str] = []
    release = threading.Event()
    try:

        def slow(session: Session) -> None:
            started.append("slow")
            release.wait(timeout=10)

        holder = threading.Thread(target=database.run, args=(slow,))
        holder.start()
        while not started:
            time.sleep(0.01)
        waiting = threading.Thread(
            target=lambda: started.append(_busy_or_ran(database)),
        )
        waiting.start()
        time.sleep(0.5)  # past db_wait_seconds in the line
        release.set()
        holder.join(timeout=10)
        waiting.join(timeout=10)
    finally:
        database.dispose()
    assert started == ["slow", "database_busy"]


def _busy_or_ran(database: Database) -> str:
    try:
        database.run(lambda s: "ran")
    except DatabaseBusy as busy:
        return busy.code
    return "ran"


def test_a_use_case_cannot_wait_for_a_write_transaction_inside_one(database: Database) -> None:
    with pytest.raises(RuntimeError, match="cannot wait"):
        database.run(lambda s: database.run(lambda inner: None))


def test_an_event_loop_awaits_its_batch_with_no_thread_waiting(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_async: the use case runs in a batch on the committer's thread, handed over by
    the event loop's own thread, which goes on meanwhile; errors arrive as raised, and a
    transient conflict runs it again."""
    committer = database.committer
    assert committer is not None
    handed_over_by: list[str] = []
    submit = committer._submit

    def recording_submit(*args: Any, **kwargs: Any) -> Any:
        handed_over_by.append(threading.current_thread().name)
        return submit(*args, **kwargs)

    monkeypatch.setattr(committer, "_submit", recording_submit)
    attempts: list[str] = []

    def write(session: Session) -> str:
        session.execute(text("INSERT INTO notes (who) VALUES ('async')"))
        attempts.append(threading.current_thread().name)
        if len(attempts) == 1:
            raise RetryTransaction()  # the next attempt sees what the first could not
        return "written"

    def refuse(_session: Session) -> None:
        raise Refused()

    async def main() -> tuple[str, int, str]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        try:
            result = await database.run_async(write)
            with pytest.raises(Refused):
                await database.run_async(refuse)
        finally:
            ticker.cancel()
        return result, ticks, threading.current_thread().name

    # On a loop in a thread of its own, as uvicorn's (the browser tests leave Playwright's
    # loop running in the test's thread).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="loop") as pool:
        result, ticks, loop_thread = pool.submit(asyncio.run, main()).result(timeout=60)
    assert result == "written" and attempts == ["purse-group-commit"] * 2
    assert names(database) == {"async"}  # the first attempt rolled back to its savepoint
    assert ticks > 0  # the loop was free while the batch ran
    # Three hand-overs (two attempts, then the refused one), each from the loop's thread.
    assert handed_over_by == [loop_thread] * 3
