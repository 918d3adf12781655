"""The ledger's background jobs: sealing new transfers into the hash chain, releasing
holds that ran out, forgetting old idempotency keys, writing the balances of closed
months."""

from __future__ import annotations

from datetime import datetime, timedelta

from purse.db import Database
from purse.jobs import Job, Lane, in_transaction
from purse.ledger import checkpoints, sealer, service
from purse.ledger.rules import LedgerLimits
from purse.models import utc_now
from purse.settings import Settings


def jobs(settings: Settings) -> list[Job]:
    batch = settings.worker_batch_size_max
    limits = LedgerLimits.from_settings(settings)
    return [
        # First in its lane: on PostgreSQL a transfer is in the chain a round after it commits.
        Job("seal_chain", in_transaction(sealer.seal_transfers), Lane.ledger),
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
        Job("write_month_balances", MonthBalances(settings), Lane.ledger),
    ]


class MonthBalances:
    """The month job: one closed month, ``worker_batch_size_max`` accounts, per run.

    Most runs find nothing due (a month closes once a month). They ask in a read
    transaction, which on SQLite does not hold the writer's lock, and then not
    again until the month they found is due: this process remembers when.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.not_before: datetime | None = None

    def __call__(self, database: Database) -> int:
        now = utc_now()
        if self.not_before is not None and now < self.not_before:
            return 0
        timezone = self.settings.timezone
        due = database.run(
            lambda session: checkpoints.month_to_close(session, timezone=timezone), write=False
        )
        if due is None:
            return 0
        grace = timedelta(seconds=self.settings.ledger_checkpoint_grace_seconds)
        if not due.started and due.month_start + grace > now:
            self.not_before = due.month_start + grace
            return 0
        self.not_before = None
        return database.run(
            lambda session: checkpoints.write_month_balances(
                session,
                timezone=timezone,
                grace_seconds=self.settings.ledger_checkpoint_grace_seconds,
                accounts_max=self.settings.worker_batch_size_max,
                now=now,
            )
        )
