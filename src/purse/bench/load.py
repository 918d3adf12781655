"""The load generator of ``purse bench http``: N clients POSTing at once, bounded in count and time.

It runs in a process of its own (``spawn``ed by ``purse.bench.http``), one asyncio loop with
one httpx connection per client: the server measured has the other core to itself, and the
bench's own threads never share an interpreter lock with it. What the generator itself
costs is measured too (``client_cpu_seconds``), so a reader can tell when it, and not the
server, was the bottleneck.

Each client sends one request at a time over its own kept-alive connection, as a phone or a
checkout does, and starts the next when the answer arrives. A level stops when ``sends_max``
requests have been started or ``seconds_max`` have passed, whichever comes first; requests
in flight then are waited for (at most ``timeout_seconds``) and counted.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from purse.bench.stats import percentile_ms

AMOUNT_MINOR_MAX: Final = 100  # sends of 0.01 to 1.00: far below every limit and step-up

SEED: Final = 20_261_127

TIMEOUT: Final = "timeout"

CONNECTION_ERROR: Final = "connection_error"

SAMPLE_TEXT_LENGTH_MAX: Final = 300


@dataclass(frozen=True, slots=True)
class Sender:
    """One client's identity: its bearer token, and the handle it pays."""

    token: str
    to: str


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """One level of load: where, how many clients, and its bounds."""

    url: str
    path: str
    clients: int
    sends_max: int
    seconds_max: float
    timeout_seconds: float
    senders: tuple[Sender, ...]  # client i acts as senders[i % len(senders)]
    asset: str = "CNY"


@dataclass(slots=True)
class _Tally:
    started: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    ok_latencies: list[float] = field(default_factory=list)
    all_latencies: list[float] = field(default_factory=list)
    first_failure: str | None = None


def run_level(spec: LevelSpec) -> dict[str, Any]:
    """Drive one level and summarise it (a picklable dict: this runs in the child process)."""
    assert spec.clients >= 1 and spec.sends_max >= 1 and spec.seconds_max > 0
    assert spec.senders, "at least one sender"
    cpu_before = time.process_time()
    tally, seconds = asyncio.run(_drive(spec))
    cpu_seconds = time.process_time() - cpu_before
    return summarise(tally, seconds, clients=spec.clients, client_cpu_seconds=cpu_seconds)


async def _drive(spec: LevelSpec) -> tuple[_Tally, float]:
    tally = _Tally()
    limits = httpx.Limits(max_connections=spec.clients, max_keepalive_connections=spec.clients)
    rng = random.Random(SEED + spec.clients)  # reproducible amounts, not a secret
    async with httpx.AsyncClient(
        base_url=spec.url, limits=limits, timeout=spec.timeout_seconds
    ) as client:
        started = time.perf_counter()
        deadline = started + spec.seconds_max

        async def one_client(index: int) -> None:
            sender = spec.senders[index % len(spec.senders)]
            headers = {"Authorization": f"Bearer {sender.token}"}
            while tally.started < spec.sends_max and time.perf_counter() < deadline:
                tally.started += 1
                amount = rng.randint(1, AMOUNT_MINOR_MAX)
                body = {
                    "to": sender.to,
                    "amount": {"value": f"{amount / 100:.2f}", "currency": spec.asset},
                    "note": "bench",
                }
                headers["Idempotency-Key"] = uuid.uuid4().hex
                await _send(client, tally, spec.path, body, headers)

        await asyncio.gather(*(one_client(i) for i in range(spec.clients)))
        return tally, time.perf_counter() - started


async def _send(
    client: httpx.AsyncClient,
    tally: _Tally,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    began = time.perf_counter()
    try:
        response = await client.post(path, json=body, headers=headers)
    except httpx.TimeoutException:
        tally.statuses[TIMEOUT] += 1
        return
    except httpx.TransportError as error:
        tally.statuses[CONNECTION_ERROR] += 1
        if tally.first_failure is None:
            tally.first_failure = f"{type(error).__name__}: {error}"[:SAMPLE_TEXT_LENGTH_MAX]
        return
    elapsed = time.perf_counter() - began
    tally.statuses[str(response.status_code)] += 1
    tally.all_latencies.append(elapsed)
    if response.is_success:
        tally.ok_latencies.append(elapsed)
    elif tally.first_failure is None:
        tally.first_failure = f"{response.status_code} {response.text}"[:SAMPLE_TEXT_LENGTH_MAX]


def summarise(
    tally: _Tally, seconds: float, *, clients: int, client_cpu_seconds: float
) -> dict[str, Any]:
    """Requests and successes per second, latency of the successes and of every answer."""
    ok = sorted(tally.ok_latencies)
    answered = sorted(tally.all_latencies)
    return {
        "clients": clients,
        "requests": tally.started,
        "ok": len(ok),
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(answered) / seconds, 1) if seconds > 0 else 0.0,
        "ok_per_second": round(len(ok) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": percentile_ms(ok, 0.50),
        "p99_ms": percentile_ms(ok, 0.99),
        "all_p50_ms": percentile_ms(answered, 0.50),
        "all_p99_ms": percentile_ms(answered, 0.99),
        "statuses": dict(sorted(tally.statuses.items())),
        "first_failure": tally.first_failure,
        "client_cpu_seconds": round(client_cpu_seconds, 3),
    }
