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
from purse.ledger import service as ledger

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: Callable[[Session], int]


def default_jobs(database: Database) -> list[Job]:
    settings = database.settings
    return [
        Job(
            "expire_holds",
            lambda session: ledger.expire_overdue_holds(
                session, limit=settings.worker_batch_size_max
            ),
        ),
        Job(
            "purge_idempotency_keys",
            lambda session: ledger.purge_idempotency_keys(
                session, retention_seconds=settings.idempotency_key_retention_seconds
            ),
        ),
    ]


class JobRunner:
    def __init__(self, database: Database, jobs: list[Job] | None = None) -> None:
        self.database = database
        self.jobs = jobs if jobs is not None else default_jobs(database)
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, int]:
        """Run every job once; a failing job is logged and does not stop the others."""
        done: dict[str, int] = {}
        for job in self.jobs:
            try:
                done[job.name] = self.database.run(job.run)
            except Exception as error:
                log.error(
                    "job.failed", job=job.name, error_type=type(error).__name__, exc_info=error
                )
                done[job.name] = -1
            else:
                if done[job.name]:
                    log.info("job.done", job=job.name, count=done[job.name])
        return done

    def run_forever(self) -> None:
        interval = self.database.settings.worker_interval_seconds
        log.info("worker.started", jobs=[job.name for job in self.jobs], interval_seconds=interval)
        while not self.stop_event.is_set():
            self.run_once()
            self.stop_event.wait(interval)
        log.info("worker.stopped")

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="purse-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
