"""``purse bench ledger``: the ledger service against the bare SQL it stands on.

What is compared, and why (docs/development.md, "Benchmarks"): a
wallet's hot path is a durable transfer, so the figure to track is how close
``purse.ledger.service`` comes to the fastest code that does the same database
work with nothing in between. Machines differ and this one is noisy, so every
figure is paired with its floor, measured in the same run, and the ratio is
what is tracked.

Four modes run the same workload (a fixed-seed list of small transfers between
random distinct wallets, a ``hot_share`` of them crediting one merchant wallet,
each with an idempotency key), each on a fresh database of its own, split over
``concurrency`` threads:

* ``service_per_commit``: one ``service.submit`` of one group per use case,
  through ``Database.run`` (retries included). On SQLite the use cases of
  concurrent callers share group commits (``purse.db.GroupCommitter``).
* ``service_batched``: ``batch_size`` groups per ``service.submit`` and commit.
* ``raw_per_commit``: bare SQL (stdlib ``sqlite3`` with WAL and
  ``synchronous=FULL``, or ``psycopg``) doing the same work per transfer: read
  and check the balances (``FOR UPDATE`` in id order on PostgreSQL), update both
  balance rows, insert the transfer row (with a SHA-256 hash, unchained) and its
  idempotency row, commit.
* ``raw_batched``: the same SQL with ``batch_size`` transfers per commit.

The service does more than the floor on purpose (shape and field checks, an
idempotency look-up, the hash chain: on SQLite each batch seals its transfers and
updates the chain head row; on PostgreSQL the sealer chains them after the commit,
off the path measured here); the ratio shows what that costs. Each mode stops
after ``transfers`` transfers or ``seconds_max`` seconds, whichever comes first,
and reports what it completed. Latency is per call, i.e. per commit: in the
batched modes a transfer is acknowledged only when its whole batch commits, so its
latency is the call's latency.

Everything stays local: a temporary SQLite file, or a ``purse_bench_*``
database created on a local PostgreSQL server (unix socket or loopback) and
dropped at the end.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import threading
from collections.abc import Sequence
from functools import partial
from typing import Any, Final

from purse.bench.databases import DatabaseFactory, purse_database, set_up, warm_pool
from purse.bench.raw import RawLedger, raw_sums_ok
from purse.bench.stats import ratio, run_threads, summarise, thread_shares
from purse.bench.workload import (
    ASSET,
    IDEMPOTENCY_SCOPE,
    INITIATOR,
    REASON_CODE,
    SEED,
    ApplyChunk,
    Move,
    Target,
    Transfer,
    make_workload,
)
from purse.db import Database
from purse.ledger import service
from purse.ledger.rules import (
    DEFAULT_LIMITS,
    GroupRequest,
    TransferKind,
    TransferRequest,
)
from purse.ledger.verify import verify_ledger

MODES: Final = ("service_per_commit", "service_batched", "raw_per_commit", "raw_batched")


# Run order: each service mode right after its floor, so a pair sees the same machine.
_RUN_ORDER: Final = ("raw_per_commit", "service_per_commit", "raw_batched", "service_batched")


def _group(transfer: Transfer) -> GroupRequest:
    return GroupRequest(
        transfers=(
            TransferRequest(
                reason_code=REASON_CODE,
                kind=TransferKind.posted,
                debit_account_id=transfer.debit_id,
                credit_account_id=transfer.credit_id,
                asset=ASSET,
                amount_minor=transfer.amount_minor,
            ),
        ),
        initiator=INITIATOR,
        idempotency_scope=IDEMPOTENCY_SCOPE,
        idempotency_key=transfer.key,
    )


def _service_apply(db: Database) -> ApplyChunk:
    def apply(chunk: Sequence[Transfer]) -> int:
        groups = [_group(transfer) for transfer in chunk]
        results = db.run(lambda session: service.submit(session, groups=groups))
        return sum(1 for result in results if result.ok)

    return apply


def _measure_mode(
    factory: DatabaseFactory,
    mode: str,
    moves: Sequence[Move],
    *,
    accounts: int,
    concurrency: int,
    per_call: int,
    seconds_max: float,
) -> dict[str, Any]:
    """Set up a fresh database through purse, then time ``mode`` on it."""
    with factory.fresh(mode) as target:
        db = purse_database(target, pool_size=max(10, concurrency))
        try:
            ids = set_up(db, accounts)
            shares = thread_shares([ids.resolve(move) for move in moves], concurrency, per_call)
            if mode.startswith("service"):
                return _measure_service(
                    db, shares, planned=len(moves), per_call=per_call, seconds_max=seconds_max
                )
        finally:
            db.dispose()
        # After the funding transfers, whose ids are 1..accounts.
        id_base = len(ids.wallet_ids) + 1
        summary = _measure_raw(
            target,
            shares,
            id_base=id_base,
            planned=len(moves),
            per_call=per_call,
            seconds_max=seconds_max,
        )
        summary["sums_ok"] = raw_sums_ok(target, summary["transfers"], len(ids.wallet_ids))
        return summary


def _measure_service(
    db: Database,
    shares: list[list[Sequence[Transfer]]],
    *,
    planned: int,
    per_call: int,
    seconds_max: float,
) -> dict[str, Any]:
    warm_pool(db, len(shares))
    apply = _service_apply(db)
    results, seconds = run_threads([apply] * len(shares), shares, seconds_max)
    summary = summarise(results, seconds, planned=planned, per_call=per_call)
    report = db.run(verify_ledger, write=False)
    summary["verify_ok"] = report.ok
    summary["verify_problems"] = len(report.problems)
    return summary


def _measure_raw(
    target: Target,
    shares: list[list[Sequence[Transfer]]],
    *,
    id_base: int,
    planned: int,
    per_call: int,
    seconds_max: float,
) -> dict[str, Any]:
    writers = threading.Lock()
    raws = [RawLedger(target, writers) for _ in shares]
    try:
        applies = [partial(raw.apply, id_base=id_base) for raw in raws]
        results, seconds = run_threads(applies, shares, seconds_max)
    finally:
        for raw in raws:
            raw.close()
    return summarise(results, seconds, planned=planned, per_call=per_call)


def run_ledger_bench(
    *,
    transfers: int,
    accounts: int,
    concurrency: int,
    hot_share: float,
    database_url: str | None,
    batch_size: int,
    seconds_max: float,
) -> dict[str, Any]:
    """Measure the four modes, each on a fresh database; a JSON-serialisable report."""
    if transfers < 1:
        raise ValueError("transfers must be at least 1")
    if accounts < 2:
        raise ValueError("accounts must be at least 2 (transfers go between distinct wallets)")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not 0.0 <= hot_share <= 1.0:
        raise ValueError("hot_share must be between 0 and 1")
    if not 1 <= batch_size <= DEFAULT_LIMITS.batch_size_max:
        raise ValueError(f"batch_size must be 1 to {DEFAULT_LIMITS.batch_size_max}")
    if not seconds_max > 0:
        raise ValueError("seconds_max must be positive")

    moves = make_workload(transfers=transfers, accounts=accounts, hot_share=hot_share)
    factory = DatabaseFactory(database_url)
    try:
        measured = {
            mode: _measure_mode(
                factory,
                mode,
                moves,
                accounts=accounts,
                concurrency=concurrency,
                per_call=batch_size if mode.endswith("batched") else 1,
                seconds_max=seconds_max,
            )
            for mode in _RUN_ORDER
        }
        server_version = factory.server_version()
    finally:
        factory.close()
    modes = {mode: measured[mode] for mode in MODES}
    return {
        "benchmark": "ledger",
        "backend": factory.backend,
        "parameters": {
            "transfers": transfers,
            "accounts": accounts,
            "concurrency": concurrency,
            "hot_share": hot_share,
            "batch_size": batch_size,
            "seconds_max": seconds_max,
            "seed": SEED,
        },
        "modes": modes,
        "ratios": {
            "service_per_commit_vs_raw_per_commit": ratio(
                modes, "service_per_commit", "raw_per_commit"
            ),
            "service_batched_vs_raw_batched": ratio(modes, "service_batched", "raw_batched"),
        },
        "verify_ok": all(modes[m]["verify_ok"] for m in MODES if m.startswith("service")),
        "environment": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "postgresql": server_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
