"""Background jobs as domains declare them: a name, a lane, and a bounded unit of work.

Each domain lists its jobs (``<domain>/jobs.py``); the assembly (:mod:`purse.assembly`)
collects them and the job runner (:mod:`purse.workers.runner`) runs each lane in a
thread of its own, so a slow job (building a statement PDF) never delays another
lane's (releasing expired holds, sending the outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from purse.db import Database


class Lane(StrEnum):
    """Jobs in one lane run one after another; lanes run side by side."""

    ledger = "ledger"  # holds that ran out, idempotency keys past their retention
    outbox = "outbox"  # email and SMS waiting to be sent
    providers = "providers"  # banks and card processors: settling, asking again
    wallet = "wallet"  # money requests and merchant payments past their time
    reports = "reports"  # statements: slow, and nothing waits on them
    webhooks = "webhooks"  # merchants' webhook endpoints: other people's servers, slow or not


@dataclass(frozen=True, slots=True)
class Job:
    """A bounded unit of background work; returns how many things it handled.

    ``run`` gets the database and opens its own transactions: most jobs are one
    transaction (:func:`in_transaction`), but jobs that call a funding provider
    must call it between transactions, never inside one. Every job must be safe
    to run in several processes at once.
    """

    name: str
    run: Callable[[Database], int]
    lane: Lane = Lane.ledger


def in_transaction(use_case: Callable[[Session], int]) -> Callable[[Database], int]:
    return lambda database: database.run(use_case)
