"""The ledger's background jobs: releasing holds that ran out, forgetting old idempotency keys."""

from __future__ import annotations

from purse.jobs import Job, Lane, in_transaction
from purse.ledger import service
from purse.ledger.rules import LedgerLimits
from purse.settings import Settings


def jobs(settings: Settings) -> list[Job]:
    batch = settings.worker_batch_size_max
    limits = LedgerLimits.from_settings(settings)
    return [
        Job(
            "expire_holds",
            in_transaction(
                lambda session: service.expire_overdue_holds(session, limit=batch, limits=limits)
            ),
            Lane.ledger,
        ),
        Job(
            "purge_idempotency_keys",
            in_transaction(
                lambda session: service.purge_idempotency_keys(
                    session, retention_seconds=settings.idempotency_key_retention_seconds
                )
            ),
            Lane.ledger,
        ),
    ]
