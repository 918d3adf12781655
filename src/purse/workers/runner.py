"""The background job runner: the same loops in ``purse serve`` (threads) and ``purse worker``.

Jobs come from the domains, through the assembly (:meth:`purse.assembly.Purse.jobs`).
Each lane (:class:`purse.jobs.Lane`) runs in a thread of its own, one job after
another, every ``worker_interval_seconds``: a statement that takes a minute to
render holds up only the reports lane, never hold expiry or the outbox. Jobs are
short, bounded use cases, each in its own DB transactions, and safe to run in
several processes at once, so operators can run as many workers as they like.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from purse.db import Database
from purse.jobs import Job

log = structlog.get_logger(__name__)

BACKOFF_SECONDS_MAX = 30.0


def backoff_seconds(interval_seconds: float, failed_rounds: int) -> float:
    """The pause between rounds: the interval, doubling while every job fails, at most 30 s."""
    if failed_rounds <= 0:
        return interval_seconds
    return min(BACKOFF_SECONDS_MAX, interval_seconds * float(2 ** min(failed_rounds, 16)))


class JobRunner:
    def __init__(self, database: Database, jobs: Sequence[Job]) -> None:
        self.database = database
        self.jobs = list(jobs)
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures: dict[str, int] = {}
        self._failures_lock = threading.Lock()

    @property
    def lanes(self) -> dict[str, list[Job]]:
        """The jobs of each lane, in the order they were given."""
        lanes: dict[str, list[Job]] = {}
        for job in self.jobs:
            lanes.setdefault(str(job.lane), []).append(job)
        return lanes

    def run_once(self, jobs: Sequence[Job] | None = None) -> dict[str, int]:
        """Run each job once (every lane's, or ``jobs``); a failing job does not stop the others.

        Returns how many things each job handled (-1 for a failure). A job that keeps
        failing (the database is down, say) is logged with its traceback the first
        time only, then as one line with the count, so an outage does not flood the log.
        """
        done: dict[str, int] = {}
        for job in self.jobs if jobs is None else jobs:
            try:
                done[job.name] = job.run(self.database)
            except Exception as error:
                with self._failures_lock:
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
                with self._failures_lock:
                    recovered = self._failures.pop(job.name, 0)
                if recovered:
                    log.info("job.recovered", job=job.name)
                if done[job.name]:
                    log.info("job.done", job=job.name, count=done[job.name])
        return done

    def _run_lane(self, lane: str, jobs: list[Job]) -> None:
        interval = self.database.settings.worker_interval_seconds
        failed_rounds = 0
        while not self.stop_event.is_set():
            results = self.run_once(jobs)
            # When every job of the lane failed, something they share is down: wait longer.
            failing = bool(results) and all(count < 0 for count in results.values())
            failed_rounds = failed_rounds + 1 if failing else 0
            self.stop_event.wait(backoff_seconds(interval, failed_rounds))
        log.info("worker.lane_stopped", lane=lane)

    def start_threads(self) -> None:
        """Run every lane in a daemon thread of its own until :meth:`stop`."""
        interval = self.database.settings.worker_interval_seconds
        lanes = self.lanes
        log.info(
            "worker.started",
            lanes={lane: [job.name for job in jobs] for lane, jobs in lanes.items()},
            interval_seconds=interval,
        )
        for lane, jobs in lanes.items():
            thread = threading.Thread(
                target=self._run_lane, args=(lane, jobs), name=f"purse-{lane}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def run_forever(self) -> None:
        """Run every lane until :meth:`stop` (or the stop event) is called."""
        self.start_threads()
        self.stop_event.wait()
        self.join()
        log.info("worker.stopped")

    def stop(self, timeout_seconds: float = 10.0) -> None:
        self.stop_event.set()
        self.join(timeout_seconds)

    def join(self, timeout_seconds: float = 10.0) -> None:
        for thread in self._threads:
            thread.join(timeout_seconds)
        self._threads = [thread for thread in self._threads if thread.is_alive()]
