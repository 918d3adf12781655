"""Child process of the crash test: writes transfers and reports each one after its commit.

Usage: crash_child.py DATABASE_URL SOURCE_ID WALLET_ID...

Eight threads write at once, so that on SQLite their use cases share group commits,
and one use case in ten fails after writing (it must leave nothing behind). Prints
"committed KEY ID" for each acknowledged transfer and, now and then,
"grouped COMMITS USE_CASES": how many use cases the commits so far carried.
"""

from __future__ import annotations

import random
import sys
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from purse.db import Database
from purse.ledger import service as ledger
from purse.ledger.rules import GroupRequest, Initiator, TransferRequest
from purse.settings import Settings

INITIATOR = Initiator(kind="system", id="crash-child", authenticated_by="system")
THREADS = 8


class Refused(Exception):
    """A use case that fails after it wrote: its savepoint must take everything back."""


def main() -> None:
    url, source, *wallets = sys.argv[1:]
    database = Database(Settings(database_url=url, secret_key="c" * 40, env="test"))
    ids = [int(w) for w in wallets]
    output = threading.Lock()
    counts = {"commits": 0, "use_cases": 0}

    @event.listens_for(database.engine, "commit")
    def _count(_connection: Any) -> None:
        counts["commits"] += 1

    def write(thread: int) -> None:
        rng = random.Random(thread)
        for step in range(1_000_000):
            size = rng.choice([1, 1, 1, 20])  # mostly single transfers, sometimes 20 at once
            fails = rng.random() < 0.1
            prefix = "fail-" if fails else ""
            groups = []
            for index in range(size):
                debit, credit = rng.sample(ids, 2)
                groups.append(
                    GroupRequest(
                        transfers=(
                            TransferRequest(
                                debit_account_id=debit,
                                credit_account_id=credit,
                                asset="CNY",
                                amount_minor=rng.randint(1, 50),
                                reason_code="p2p",
                            ),
                        ),
                        initiator=INITIATOR,
                        idempotency_scope="crash",
                        idempotency_key=f"{prefix}{thread}-{step}-{index}",
                    )
                )

            def use_case(
                session: Session, groups: list[GroupRequest] = groups, fails: bool = fails
            ) -> list[Any]:
                results = ledger.submit(session, groups=groups)
                if fails:
                    raise Refused()
                return results

            try:
                results = database.run(use_case)
            except Refused:
                continue
            # Only now, after the commit returned, is a transfer acknowledged.
            lines = [
                f"committed {g.idempotency_key} {r.transfers[0].id}"
                for g, r in zip(groups, results, strict=True)
                if r.ok
            ]
            with output:
                counts["use_cases"] += 1
                if counts["use_cases"] % 50 == 0:
                    lines.append(f"grouped {counts['commits']} {counts['use_cases']}")
                if lines:
                    sys.stdout.write("\n".join(lines) + "\n")
                    sys.stdout.flush()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    del source


if __name__ == "__main__":
    main()
