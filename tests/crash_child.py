"""Child process of the crash test: writes transfers and reports each one after its commit.

Usage: crash_child.py DATABASE_URL SOURCE_ID WALLET_ID...  (prints "committed KEY ID" lines)
"""

from __future__ import annotations

import random
import sys
from functools import partial

from purse.db import Database
from purse.ledger import service as ledger
from purse.ledger.rules import GroupRequest, Initiator, TransferRequest
from purse.settings import Settings

INITIATOR = Initiator(kind="system", id="crash-child", authenticated_by="system")


def main() -> None:
    url, source, *wallets = sys.argv[1:]
    database = Database(Settings(database_url=url, secret_key="c" * 40, env="test"))
    ids = [int(w) for w in wallets]
    rng = random.Random(7)
    for step in range(1_000_000):
        size = rng.choice([1, 1, 1, 20])  # mostly single transfers, sometimes a batch in one commit
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
                    idempotency_key=f"{step}-{index}",
                )
            )
        results = database.run(partial(ledger.submit, groups=groups))
        # Only now, after the commit returned, is a transfer acknowledged.
        lines = [
            f"committed {g.idempotency_key} {r.transfers[0].id}"
            for g, r in zip(groups, results, strict=True)
            if r.ok
        ]
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
    del source


if __name__ == "__main__":
    main()
