"""The funding domain's background job: the built-in simulator's bank settles and calls back."""

from __future__ import annotations

from purse.funding.context import Funding
from purse.jobs import Job, Lane


def jobs(funding: Funding) -> list[Job]:
    batch = funding.database.settings.worker_batch_size_max
    return [
        Job(
            "simulator_settle",
            lambda _database: funding.simulator.settle_due(limit=batch),
            Lane.providers,
        )
    ]
