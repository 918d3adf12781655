"""``purse bench http``: P2P sends through a real ``purse serve``, against a no-op on its server.

What is compared, and why (docs/development.md, "Benchmarks"): a person feels a send
through the whole stack (authentication, idempotency, limits, the ledger, the outbox, the
audit log), so it is measured from outside, over HTTP, at 1, 16 and 64 clients. The floor
is what that stack would cost if purse did nothing: the same app, middleware and uvicorn
configuration answering a no-op POST (``purse.bench.floor``), measured in the same run.
The ratio of successful sends per second to floor answers per second is the figure to
track; absolutes swing with the machine's load.

The run, on a fresh database (SQLite file, or a ``purse_bench_*`` database on a local
PostgreSQL):

1. migrate, and create ``users`` verified users through purse's sign-up service;
2. start the floor and ``purse serve`` (with its background jobs, as an operator runs it)
   side by side; sign every user in through ``POST /v1/auth/token``, add a card and top
   up through the API (the simulator's bank settles it; only the ledger changes a
   balance); warm both up;
3. at each level, the floor then purse, back to back, so both see the same machine (the
   ratio is the figure; the load of a shared machine moves both together). Before the
   floor, purse must be idle (its relay may still be sending the last level's
   notifications), and an idle server costs the other nothing;
4. check the sends were real: the ledger holds one ``p2p_send`` transfer per 2xx answer,
   the users' balances moved and their sum did not, and ``purse ledger verify`` passes.

The load generator runs in a spawned process (``purse.bench.load``).
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from purse import migrate
from purse.assembly import assemble
from purse.audit.service import Actor
from purse.bench.databases import SECRET_KEY, DatabaseFactory
from purse.bench.floor import NOOP_PATH
from purse.bench.load import SEED, LevelSpec, Sender, run_level
from purse.bench.serving import Running, floor_command, purse_serve_command, serving
from purse.db import Database
from purse.identity.context import Identity
from purse.identity.models import User
from purse.identity.signup import create_verified_user
from purse.ledger.models import Transfer
from purse.settings import Settings

SEND_PATH: Final = "/v1/wallet/transfers"

ASSET: Final = "CNY"

PASSWORD: Final = "bench-lantern-river-42"  # noqa: S105 - throwaway users on a throwaway database

TOP_UP: Final = "10000.00"  # each user's money: thousands of sends of at most 1.00

GOOD_CARD: Final = "4242424242424242"  # the simulator's bank says yes to it

WARMUP_SENDS: Final = 20

SETUP_THREADS: Final = 4

SETUP_RETRY_COUNT_MAX: Final = 20

SETUP_TIMEOUT_SECONDS: Final = 30.0

SETTLE_SECONDS_MAX: Final = 60.0

OPERATOR: Final = Actor(kind="operator", id="bench")

FIRST_MINUTE_SECONDS: Final = 60.0

FLAT_GROWTH_MAX: Final = 0.05  # memory after the first minute may move by 5%, no more


def run_http_bench(
    *,
    clients: Sequence[int],
    sends_max: int,
    seconds_max: float,
    timeout_seconds: float,
    database_url: str | None,
    users: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Measure the floor and purse at each level of ``clients``; a JSON-serialisable report."""
    if not clients or any(count < 1 for count in clients):
        raise ValueError("clients must be one or more positive numbers")
    if sends_max < 1:
        raise ValueError("sends must be at least 1")
    if not (seconds_max > 0 and timeout_seconds > 0):
        raise ValueError("seconds and timeout must be positive")
    user_count = users if users is not None else max(2, max(clients))
    if user_count < 2:
        raise ValueError("users must be at least 2 (each pays the next)")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    levels = sorted(set(clients))
    factory = DatabaseFactory(database_url)
    logs = Path(tempfile.mkdtemp(prefix="purse-bench-http-"))
    context = get_context("spawn")  # a fresh interpreter: no threads or locks inherited
    try:
        with (
            factory.fresh("http") as target,
            ProcessPoolExecutor(max_workers=1, mp_context=context) as load,
        ):
            environment = _server_environment(target.database_url, levels, seconds_max)
            settings = Settings(database_url=target.database_url, secret_key=SECRET_KEY)
            handles = _create_users(settings, user_count)

            # The floor reads no token; it gets the same headers all the same.
            anonymous = tuple(Sender(token="not-checked", to=h) for h in handles)  # noqa: S106
            with (
                serving(
                    partial(floor_command, workers=workers),
                    environment=environment,
                    log_path=logs / "f.log",
                ) as f,
                serving(
                    partial(purse_serve_command, workers=workers),
                    environment=environment,
                    log_path=logs / "p.log",
                ) as p,
            ):
                senders = _seed_money(p.url, handles)
                before = _balances(p.url, senders)
                sides = {
                    "floor": _Side(f, NOOP_PATH, anonymous),
                    "purse": _Side(p, SEND_PATH, senders),
                }

                def measure(side: str, clients: int, sends: int) -> dict[str, Any]:
                    return _measure(
                        load.submit,
                        sides[side],
                        clients=clients,
                        sends_max=sends,
                        seconds_max=seconds_max,
                        timeout_seconds=timeout_seconds,
                    )

                warmup = {side: measure(side, 1, WARMUP_SENDS) for side in sides}
                floor: dict[str, Any] = {}
                purse: dict[str, Any] = {}
                for level in levels:  # each pair back to back: the same machine for both
                    p.wait_until_quiet()  # purse's relay catching up must not slow the floor
                    floor[str(level)] = measure("floor", level, sends_max)
                    purse[str(level)] = measure("purse", level, sends_max)
                after = _balances(p.url, senders)
            checks = _check_sends(settings, [warmup["purse"], *purse.values()], before, after)
        server_version = factory.server_version()
    finally:
        factory.close()
        shutil.rmtree(logs, ignore_errors=True)  # a server that failed showed its log's tail
    return {
        "benchmark": "http",
        "backend": factory.backend,
        "parameters": {
            "clients": levels,
            "sends_max": sends_max,
            "seconds_max": seconds_max,
            "timeout_seconds": timeout_seconds,
            "users": user_count,
            "workers": workers,
            "seed": SEED,
        },
        "purse": purse,
        "floor": floor,
        "ratios": {level: _ratio(purse[level], floor[level]) for level in purse},
        "warmup": warmup,
        "checks": checks,
        "environment": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "postgresql": server_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }


def run_memory_bench(
    *,
    clients: int,
    seconds: float,
    sample_seconds: float,
    timeout_seconds: float,
    database_url: str | None,
) -> dict[str, Any]:
    """The resident memory of ``purse serve`` across ``seconds`` of sends, sampled.

    The same server, users and sends as ``purse bench http``, one level of ``clients``
    for the whole time. Memory may grow in the first minute (caches, pools, imports);
    after that it must stay flat: ``growth_after_first_minute`` is the largest sample
    after the first minute against the first sample after it, and ``flat`` says
    whether that is within 5%.
    """
    if clients < 1 or not (seconds > 0 and sample_seconds > 0 and timeout_seconds > 0):
        raise ValueError("clients, seconds, sample seconds and timeout must be positive")
    factory = DatabaseFactory(database_url)
    logs = Path(tempfile.mkdtemp(prefix="purse-bench-memory-"))
    samples: list[dict[str, float]] = []
    try:
        with (
            factory.fresh("memory") as target,
            ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as load,
        ):
            environment = _server_environment(target.database_url, [clients], seconds)
            settings = Settings(database_url=target.database_url, secret_key=SECRET_KEY)
            handles = _create_users(settings, max(2, clients))
            with serving(
                purse_serve_command, environment=environment, log_path=logs / "p.log"
            ) as p:
                senders = _seed_money(p.url, handles)
                spec = LevelSpec(
                    url=p.url,
                    path=SEND_PATH,
                    clients=clients,
                    sends_max=10**9,  # bounded by the time
                    seconds_max=seconds,
                    timeout_seconds=timeout_seconds,
                    senders=senders,
                    asset=ASSET,
                )
                started = time.monotonic()
                running = load.submit(run_level, spec)
                while not running.done():
                    rss = p.rss_bytes()
                    if rss is not None:
                        at = round(time.monotonic() - started, 1)
                        samples.append({"seconds": at, "rss_mb": round(rss / 2**20, 1)})
                    try:
                        running.result(timeout=sample_seconds)
                    except FuturesTimeout:
                        continue
                result: dict[str, Any] = running.result()
                p.check_alive()
    finally:
        factory.close()
        shutil.rmtree(logs, ignore_errors=True)
    return {
        "benchmark": "memory",
        "backend": factory.backend,
        "parameters": {
            "clients": clients,
            "seconds": seconds,
            "sample_seconds": sample_seconds,
            "timeout_seconds": timeout_seconds,
        },
        "load": result,
        "samples": samples,
        **memory_growth(samples),
    }


def memory_growth(samples: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Growth after the first minute: the largest later sample against the first one then."""
    later = [sample["rss_mb"] for sample in samples if sample["seconds"] >= FIRST_MINUTE_SECONDS]
    if len(later) < 2:
        return {"growth_after_first_minute": None, "flat": None}
    growth = round((max(later) - later[0]) / later[0], 4)
    return {"growth_after_first_minute": growth, "flat": growth <= FLAT_GROWTH_MAX}


def _server_environment(database_url: str, levels: Sequence[int], seconds: float) -> dict[str, str]:
    """The servers' environment: this one's (so PURSE_* tuning applies to both), pointed here.

    Access tokens must outlive the run (the default lifetime is 15 minutes).
    """
    run_seconds = int(2 * len(levels) * seconds) + 600
    return {
        **os.environ,
        "PURSE_DATABASE_URL": database_url,
        "PURSE_SECRET_KEY": SECRET_KEY.get_secret_value(),
        "PURSE_ACCESS_TOKEN_TTL_SECONDS": str(max(15 * 60, run_seconds)),
    }


def _create_users(settings: Settings, count: int) -> list[str]:
    """Verified users at KYC level 1 (so the bench stays far below their limits), migrated first."""
    database = Database(settings)
    try:
        migrate.upgrade(database)
        identity = Identity(settings)
        handles = [f"bench_{index}" for index in range(count)]

        def create(session: Session, *, handle: str) -> None:
            user_id = create_verified_user(
                session,
                identity=identity,
                handle=handle,
                display_name=handle.replace("_", " ").title(),
                password=PASSWORD,
                role="user",
                locale="en",
                actor=OPERATOR,
                email=f"{handle}@example.com",
            )
            session.execute(update(User).where(User.id == user_id).values(kyc_level=1))

        for handle in handles:
            database.run(partial(create, handle=handle))
        return handles
    finally:
        database.dispose()


def _parallel(work: Callable[[int], Any], count: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=SETUP_THREADS) as pool:
        return list(pool.map(work, range(count)))


def _seed_money(url: str, handles: Sequence[str]) -> tuple[Sender, ...]:
    """Sign each user in, add a card and top up through the API; wait until the bank settles."""

    def seed(index: int) -> Sender:
        with httpx.Client(base_url=url, timeout=SETUP_TIMEOUT_SECONDS) as client:
            signed_in = _call(
                client,
                "POST",
                "/v1/auth/token",
                json={"identifier": handles[index], "password": PASSWORD},
            )
            headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
            card = _call(
                client,
                "POST",
                "/v1/wallet/funding-sources",
                headers=headers,
                json={
                    "kind": "card",
                    "number": GOOD_CARD,
                    "expiry_month": 12,
                    "expiry_year": 2099,
                    "holder_name": handles[index].replace("_", " ").title(),
                },
            )
            _call(  # the same key if tried again: one top-up, whatever the retries
                client,
                "POST",
                "/v1/wallet/top-ups",
                headers={**headers, "Idempotency-Key": f"bench-top-up-{index}"},
                json={
                    "funding_source_id": card["id"],
                    "amount": {"value": TOP_UP, "currency": ASSET},
                },
            )
        return Sender(token=str(signed_in["access_token"]), to=handles[(index + 1) % len(handles)])

    senders = tuple(_parallel(seed, len(handles)))
    _wait_for_money(url, senders)
    return senders


def _wait_for_money(url: str, senders: tuple[Sender, ...]) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS_MAX
    while time.monotonic() < deadline:
        if all(balance >= Decimal(TOP_UP) for balance in _balances(url, senders)):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the top-ups did not settle within {SETTLE_SECONDS_MAX:.0f} s")


def _balances(url: str, senders: tuple[Sender, ...]) -> list[Decimal]:
    def read(index: int) -> Decimal:
        with httpx.Client(base_url=url, timeout=SETUP_TIMEOUT_SECONDS) as client:
            found = _call(
                client,
                "GET",
                "/v1/wallet/balances",
                headers={"Authorization": f"Bearer {senders[index].token}"},
            )
        for item in found:
            if item["currency"] == ASSET:
                return Decimal(item["balance"]["value"])
        return Decimal(0)

    return _parallel(read, len(senders))


def _call(client: httpx.Client, method: str, path: str, **options: Any) -> Any:
    """A set-up call, tried again while purse says it is busy (503, 429: it is being measured
    at its limits, set-up included); its JSON, or the error."""
    for _ in range(SETUP_RETRY_COUNT_MAX):
        response = client.request(method, path, **options)
        if response.status_code not in (429, 503):
            break
        retry_after = response.headers.get("retry-after", "")
        time.sleep(min(float(retry_after), 5.0) if retry_after.isdigit() else 0.5)
    return _ok(response)


def _ok(response: httpx.Response) -> Any:
    if not response.is_success:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response.json()


@dataclass(frozen=True, slots=True)
class _Side:
    running: Running
    path: str
    senders: tuple[Sender, ...]


def _measure(
    submit: Callable[..., Any],
    side: _Side,
    *,
    clients: int,
    sends_max: int,
    seconds_max: float,
    timeout_seconds: float,
) -> dict[str, Any]:
    """One level on one side, with the server's CPU time around it."""
    spec = LevelSpec(
        url=side.running.url,
        path=side.path,
        clients=clients,
        sends_max=sends_max,
        seconds_max=seconds_max,
        timeout_seconds=timeout_seconds,
        senders=side.senders,
        asset=ASSET,
    )
    cpu_before = side.running.cpu_seconds()
    result: dict[str, Any] = submit(run_level, spec).result()
    cpu_after = side.running.cpu_seconds()
    side.running.check_alive()
    if cpu_before is not None and cpu_after is not None:
        used = cpu_after - cpu_before
        result["server_cpu_seconds"] = round(used, 3)
        answered = sum(n for key, n in result["statuses"].items() if key.isdigit())
        result["server_cpu_ms_per_request"] = round(1000 * used / answered, 3) if answered else None
    return result


def _ratio(purse: dict[str, Any], floor: dict[str, Any]) -> float:
    base = float(floor["ok_per_second"])
    return round(float(purse["ok_per_second"]) / base, 4) if base else 0.0


def _check_sends(
    settings: Settings,
    runs: Sequence[dict[str, Any]],
    before: Sequence[Decimal],
    after: Sequence[Decimal],
) -> dict[str, Any]:
    """The sends were real: one ledger transfer per 2xx, balances moved, money conserved."""
    answered_ok = sum(run["ok"] for run in runs)
    database = Database(settings)
    try:
        recorded = database.run(
            lambda session: int(
                session.scalar(
                    select(func.count())
                    .select_from(Transfer)
                    .where(Transfer.reason_code == "p2p_send")
                )
                or 0
            ),
            write=False,
        )
        report = database.run(assemble(settings, database=database).verify, write=False)
    finally:
        database.dispose()
    return {
        "sends_ok": answered_ok,
        "sends_recorded": recorded,
        "balances_changed": sum(1 for old, new in zip(before, after, strict=True) if old != new),
        "balance_total_before": str(sum(before, Decimal(0))),
        "balance_total_after": str(sum(after, Decimal(0))),
        "verify_ok": report.ok,
        "verify_problems": len(report.problems),
    }
