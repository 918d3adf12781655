"""The background job runner: the same loop in ``purse serve`` (a thread) and ``purse worker``.

Jobs are short, bounded use cases, each in its own DB transaction. They are safe
to run in several processes at once (see each job), so operators can run as many
workers as they like.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from purse.db import Database
from purse.identity.context import Identity
from purse.ledger import service as ledger
from purse.notify import relay
from purse.wallet import bank, statements
from purse.wallet import service as wallet_service
from purse.wallet.context import Wallet

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A bounded unit of background work; returns how many things it handled.

    ``run`` gets the database and opens its own transactions: most jobs are one
    transaction (:func:`in_transaction`), but jobs that call a funding provider
    must call it between transactions, never inside one.
    """

    name: str
    run: Callable[[Database], int]


def in_transaction(use_case: Callable[[Session], int]) -> Callable[[Database], int]:
    return lambda database: database.run(use_case)


def default_jobs(database: Database, wallet: Wallet | None = None) -> list[Job]:
    settings = database.settings
    wallet = wallet if wallet is not None else Wallet(database, Identity(settings))
    batch = settings.worker_batch_size_max
    channels = relay.channels_from(settings)
    return [
        Job(
            "expire_holds",
            in_transaction(lambda session: ledger.expire_overdue_holds(session, limit=batch)),
        ),
        Job(
            "purge_idempotency_keys",
            in_transaction(
                lambda session: ledger.purge_idempotency_keys(
                    session, retention_seconds=settings.idempotency_key_retention_seconds
                )
            ),
        ),
        # The built-in simulator's bank settles payments and sends its callbacks.
        Job("simulator_settle", lambda _database: wallet.simulator.settle_due(limit=batch)),
        Job(
            "funding_follow_up",
            lambda _database: bank.follow_up_provider_operations(wallet, limit=batch),
        ),
        Job(
            "expire_money_requests",
            in_transaction(lambda session: wallet_service.expire_requests(session, limit=batch)),
        ),
        Job("build_statements", lambda _database: statements.build_statements(wallet)),
        Job(
            "relay_outbox",
            lambda database: relay.relay_outbox(
                database, cipher=wallet.identity.cipher, channels=channels
            ),
        ),
    ]


BACKOFF_SECONDS_MAX = 30.0


def backoff_seconds(interval_seconds: float, failed_rounds: int) -> float:
    """The pause between rounds: the interval, doubling while every job fails, at most 30 s."""
    if failed_rounds <= 0:
        return interval_seconds
    return min(BACKOFF_SECONDS_MAX, interval_seconds * float(2 ** min(failed_rounds, 16)))


class JobRunner:
    def __init__(
        self, database: Database, jobs: list[Job] | None = None, *, wallet: Wallet | None = None
    ) -> None:
        self.database = database
        self.jobs = jobs if jobs is not None else default_jobs(database, wallet)
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures: dict[str, int] = {}
        self._idle_rounds = 0

    def run_once(self) -> dict[str, int]:
        """Run every job once; a failing job is logged and does not stop the others.

        A job that keeps failing (the database is down, say) is logged with its
        traceback the first time only, then as one line with the count, so an
        outage does not flood the log.
        """
        done: dict[str, int] = {}
        for job in self.jobs:
            try:
                done[job.name] = job.run(self.database)
            except Exception as error:
                streak = self._failures.get(job.name, 0) + 1
                self._failures[job.name] = streak
                if streak == 1:
                    log.error(
                        "job.failed", job=job.name, error_type=type(error).__name__, exc_info=error
                    )
                else:
                    log.warning(
                        "job.still_failing",
                        job=job.name,
                        error_type=type(error).__name__,
                        failures=streak,
                    )
                done[job.name] = -1
            else:
                if self._failures.pop(job.name, 0):
                    log.info("job.recovered", job=job.name)
                if done[job.name]:
                    log.info("job.done", job=job.name, count=done[job.name])
        return done

    def run_forever(self) -> None:
        interval = self.database.settings.worker_interval_seconds
        log.info("worker.started", jobs=[job.name for job in self.jobs], interval_seconds=interval)
        while not self.stop_event.is_set():
            results = self.run_once()
            # When every job failed, something they share is down: wait longer each time.
            failing = all(count < 0 for count in results.values()) if results else False
            self._idle_rounds = self._idle_rounds + 1 if failing else 0
            self.stop_event.wait(backoff_seconds(interval, self._idle_rounds))
        log.info("worker.stopped")

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="purse-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
