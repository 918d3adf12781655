"""The wallet's background jobs: asking silent banks again, expiring requests, statements."""

from __future__ import annotations

from purse.jobs import Job, Lane, in_transaction
from purse.wallet import banking, service, statements
from purse.wallet.context import Wallet


def jobs(wallet: Wallet) -> list[Job]:
    batch = wallet.settings.worker_batch_size_max
    return [
        Job(
            "funding_follow_up",
            lambda _database: banking.follow_up_provider_operations(wallet, limit=batch),
            Lane.providers,
        ),
        Job(
            "expire_money_requests",
            in_transaction(lambda session: service.expire_requests(session, limit=batch)),
            Lane.wallet,
        ),
        Job(
            "build_statements",
            lambda _database: statements.build_statements(wallet),
            Lane.reports,
        ),
    ]
