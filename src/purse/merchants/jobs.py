"""The merchants' background jobs: payments whose approval window ended unapproved."""

from __future__ import annotations

from purse.jobs import Job, Lane, in_transaction
from purse.merchants import payments
from purse.settings import Settings


def jobs(settings: Settings) -> list[Job]:
    batch = settings.worker_batch_size_max
    return [
        Job(
            "expire_unapproved_payments",
            in_transaction(lambda session: payments.expire_unapproved(session, limit=batch)),
            Lane.wallet,
        ),
    ]
