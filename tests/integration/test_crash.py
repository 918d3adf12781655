"""kill -9 of a writer: every acknowledged transfer survives and the ledger verifies.

The writer runs eight threads, so on SQLite the kill lands during group commits.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from factories import make_settings, wallets
from purse.db import Database
from purse.ledger.models import IdempotencyKey, Transfer
from purse.ledger.verify import verify_ledger

CHILD = Path(__file__).parent.parent / "crash_child.py"


def run_and_kill(
    database_url: str, source: int, ids: list[int], *, seconds: float, grouped: list[int]
) -> dict[str, int]:
    """Start the child, read its acknowledgements for ``seconds``, then SIGKILL it.

    ``grouped`` gets the child's last count of commits and of the use cases they carried.
    """
    process = subprocess.Popen(
        [sys.executable, str(CHILD), database_url, str(source), *map(str, ids)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    acknowledged: dict[str, int] = {}
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60  # the child's start-up; reset at its first acknowledgement
    buffer = b""
    while time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=0.05):
            buffer += os.read(process.stdout.fileno(), 65536)
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                kind, first, second = line.decode().split()
                if kind == "grouped":
                    grouped[:] = [int(first), int(second)]
                    continue
                if not acknowledged:
                    deadline = time.monotonic() + seconds
                acknowledged[first] = int(second)
    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    selector.close()
    process.stdout.close()
    if process.stderr:
        process.stderr.close()
    return acknowledged


def test_acknowledged_transfers_survive_kill_9(database_url: str) -> None:
    database = Database(make_settings(database_url))
    source, ids = wallets(database, count=10, balance_minor=1_000_000)
    total = 0
    for round_ in range(3):
        grouped: list[int] = []
        acknowledged = run_and_kill(
            database_url, source, ids, seconds=1.0 + 0.3 * round_, grouped=grouped
        )
        assert len(acknowledged) > 20, "the child made too little progress to test anything"
        if database.is_sqlite:
            # The kill came during group commits: use cases of several threads per commit.
            commits, use_cases = grouped
            assert use_cases > commits, grouped
        total += len(acknowledged)
        with database.transaction(write=False) as session:
            stored = dict(
                session.execute(
                    select(IdempotencyKey.key, IdempotencyKey.group_id).where(
                        IdempotencyKey.key.in_(list(acknowledged))
                    )
                ).all()
            )
            present = set(session.execute(select(Transfer.id)).scalars())
            refused = session.scalar(
                select(func.count())
                .select_from(IdempotencyKey)
                .where(IdempotencyKey.key.like("fail-%"))
            )
        lost = {key for key, transfer_id in acknowledged.items() if stored.get(key) != transfer_id}
        assert not lost, f"{len(lost)} acknowledged transfers lost"
        assert refused == 0, "a use case that failed left its transfers behind"
        assert set(acknowledged.values()) <= present
        report = database.run(lambda s: verify_ledger(s), write=False)
        assert report.ok, report.problems
        # Keys of the next round must not collide with this round's.
        database.run(
            lambda s: s.execute(text("DELETE FROM ledger_idempotency WHERE scope = 'crash'"))
        )
    if database.is_sqlite:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    database.dispose()
    assert total > 60
