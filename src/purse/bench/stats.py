"""Timing the modes: threads with a shared clock, percentiles, summaries and ratios."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from purse.bench.workload import ApplyChunk, Transfer, WorkerResult, chunks

ERROR_TEXT_LENGTH_MAX: Final = 300


class _Clock:
    """Started by the last thread to reach the start line; every thread reads the deadline."""

    def __init__(self, seconds_max: float) -> None:
        self.seconds_max = seconds_max
        self.started = 0.0
        self.deadline = math.inf

    def start(self) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + self.seconds_max


def run_threads(
    applies: Sequence[ApplyChunk], shares: Sequence[list[Sequence[Transfer]]], seconds_max: float
) -> tuple[list[WorkerResult], float]:
    """Run each thread's chunks from one start line until done or out of time."""
    clock = _Clock(seconds_max)
    start_line = threading.Barrier(len(applies), action=clock.start)
    results = [WorkerResult() for _ in applies]

    def work(apply: ApplyChunk, chunks: list[Sequence[Transfer]], result: WorkerResult) -> None:
        start_line.wait()
        for chunk in chunks:
            if time.perf_counter() >= clock.deadline:
                return
            began = time.perf_counter()
            try:
                applied = apply(chunk)
            except Exception as error:  # counted and reported, the run goes on
                applied = 0
                if result.first_error is None:
                    result.first_error = f"{type(error).__name__}: {error}"[:ERROR_TEXT_LENGTH_MAX]
            result.latencies.append(time.perf_counter() - began)
            result.done += applied
            result.errors += len(chunk) - applied

    threads = [
        threading.Thread(target=work, args=(apply, chunks, result), name=f"bench-{i}")
        for i, (apply, chunks, result) in enumerate(zip(applies, shares, results, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - clock.started


def percentile_ms(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds (0 with no samples)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(share * len(ordered)))
    return round(ordered[rank - 1] * 1000, 3)


def summarise(
    results: Sequence[WorkerResult], seconds: float, *, planned: int, per_call: int
) -> dict[str, Any]:
    latencies = sorted(s for result in results for s in result.latencies)
    done = sum(result.done for result in results)
    errors = sum(result.errors for result in results)
    p50, p99 = percentile_ms(latencies, 0.50), percentile_ms(latencies, 0.99)
    first_error = next((r.first_error for r in results if r.first_error is not None), None)
    return {
        "transfers": done,
        "errors": errors,
        "stopped_by": "count" if done + errors >= planned else "time",
        "calls": len(latencies),
        "transfers_per_call": per_call,
        "seconds": round(seconds, 3),
        "transfers_per_second": round(done / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "transfer_p50_ms": p50,
        "transfer_p99_ms": p99,
        "latency_note": (
            "per call, i.e. per commit; a transfer is acknowledged when its call commits, "
            "so per-transfer latency equals call latency"
            + (f" (the whole batch of {per_call})" if per_call > 1 else "")
        ),
        "first_error": first_error,
    }


def thread_shares(
    transfers: Sequence[Transfer], concurrency: int, per_call: int
) -> list[list[Sequence[Transfer]]]:
    return [chunks(transfers[i::concurrency], per_call) for i in range(concurrency)]


def ratio(modes: dict[str, dict[str, Any]], service_mode: str, raw_mode: str) -> float:
    raw = float(modes[raw_mode]["transfers_per_second"])
    return round(float(modes[service_mode]["transfers_per_second"]) / raw, 3) if raw else 0.0
