"""The load generator of ``purse bench http``: N clients POSTing at once, bounded in count and time.

It runs in a process of its own (``spawn``ed by ``purse.bench.http``), one asyncio loop with
one HTTP/1.1 connection per client (h11 over asyncio streams, see ``_Connection``): the
server measured has the other core to itself, and the bench's own threads never share an
interpreter lock with it. What the generator itself costs is measured too
(``client_cpu_seconds``), so a reader can tell when it, and not the server, was the
bottleneck.

Each client sends one request at a time over its own kept-alive connection, as a phone or a
checkout does, and starts the next when the answer arrives; after a 503 or 429 it waits as
long as the answer's ``Retry-After`` asks, as a well-behaved client does (so under overload
the level measures what the server gets done, not how fast it can refuse). A level stops
when ``sends_max`` requests have been started or ``seconds_max`` have passed, whichever
comes first; requests in flight then are waited for (at most ``timeout_seconds``) and
counted.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import h11

from purse.bench.stats import percentile_ms

AMOUNT_MINOR_MAX: Final = 100  # sends of 0.01 to 1.00: far below every limit and step-up

SEED: Final = 20_261_127

TIMEOUT: Final = "timeout"

CONNECTION_ERROR: Final = "connection_error"

SAMPLE_TEXT_LENGTH_MAX: Final = 300

_READ_BYTES_MAX: Final = 64 * 1024


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
    # A 503 must say when to come back: the overload check counts those that do not.
    refusals_without_retry_after: int = 0


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
    rng = random.Random(SEED + spec.clients)  # reproducible amounts, not a secret
    url = urlsplit(spec.url)
    assert url.scheme == "http" and url.hostname, "the bench speaks plain HTTP on loopback"
    connections = [_Connection(url.hostname, url.port or 80) for _ in range(spec.clients)]
    started = time.perf_counter()
    deadline = started + spec.seconds_max

    async def one_client(index: int) -> None:
        sender = spec.senders[index % len(spec.senders)]
        connection = connections[index]
        authorization = f"Bearer {sender.token}".encode()
        while tally.started < spec.sends_max and time.perf_counter() < deadline:
            tally.started += 1
            amount = rng.randint(1, AMOUNT_MINOR_MAX)
            body = {
                "to": sender.to,
                "amount": {"value": f"{amount / 100:.2f}", "currency": spec.asset},
                "note": "bench",
            }
            headers = [
                (b"authorization", authorization),
                (b"idempotency-key", uuid.uuid4().hex.encode()),
            ]
            come_back = await _send(connection, tally, spec, json.dumps(body).encode(), headers)
            if come_back is not None and tally.started < spec.sends_max:
                # A refusal said when to come back, and a well-behaved client does.
                await asyncio.sleep(max(0.0, min(come_back, deadline - time.perf_counter())))

    try:
        await asyncio.gather(*(one_client(i) for i in range(spec.clients)))
    finally:
        for connection in connections:
            connection.close()
    return tally, time.perf_counter() - started


class _Connection:
    """One kept-alive HTTP/1.1 connection, spoken with h11 over asyncio streams.

    Why not httpx here: at 64 connections its pool and models cost the generator ~2.7 ms
    of CPU per request on this machine, more than the floor server spends answering, so the
    floor measured the client. h11 (the parser uvicorn and httpx themselves use) over bare
    streams costs a small fraction of that. A connection the server closes (uvicorn's
    503 past its connection limit, a timeout) is opened again for the next request.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.state: h11.Connection | None = None

    async def post(
        self, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, bytes, float | None]:
        """The answer's status, body, and the seconds its ``Retry-After`` asked for."""
        if self.state is None or self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.state = h11.Connection(our_role=h11.CLIENT)
        state, reader = self.state, self.reader
        request = h11.Request(
            method="POST",
            target=path,
            headers=[
                (b"host", f"{self.host}:{self.port}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        )
        self.writer.write(
            b"".join(
                state.send(event) or b""
                for event in (request, h11.Data(data=body), h11.EndOfMessage())
            )
        )
        status, chunks, retry_after = 0, [], None
        while True:
            event = state.next_event()
            if event is h11.NEED_DATA:
                state.receive_data(await reader.read(_READ_BYTES_MAX))
            elif isinstance(event, h11.Response):
                status = event.status_code
                retry_after = next(
                    (_seconds(value) for name, value in event.headers if name == b"retry-after"),
                    None,
                )
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection")
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
        else:
            self.close()  # "Connection: close", as uvicorn's 503 past its connection limit
        return status, b"".join(chunks), retry_after

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = self.state = None


def _seconds(retry_after: bytes) -> float:
    """A ``Retry-After`` in seconds; its other form (an HTTP date) is read as one second."""
    text = retry_after.decode("ascii", errors="replace").strip()
    return float(text) if text.isdigit() else 1.0


async def _send(
    connection: _Connection,
    tally: _Tally,
    spec: LevelSpec,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> float | None:
    """One request, counted; the seconds a refusal asked the client to wait, if any."""
    began = time.perf_counter()
    try:
        async with asyncio.timeout(spec.timeout_seconds):
            status, answer, retry_after = await connection.post(spec.path, headers, body)
    except TimeoutError:
        connection.close()  # its answer may still come: never read it as the next one's
        tally.statuses[TIMEOUT] += 1
        return None
    except (OSError, h11.ProtocolError) as error:  # ConnectionError is an OSError
        connection.close()
        tally.statuses[CONNECTION_ERROR] += 1
        if tally.first_failure is None:
            tally.first_failure = f"{type(error).__name__}: {error}"[:SAMPLE_TEXT_LENGTH_MAX]
        return None
    elapsed = time.perf_counter() - began
    tally.statuses[str(status)] += 1
    if status == 503 and retry_after is None:
        tally.refusals_without_retry_after += 1
    tally.all_latencies.append(elapsed)
    if 200 <= status < 300:
        tally.ok_latencies.append(elapsed)
    elif tally.first_failure is None:
        text = answer.decode("utf-8", errors="replace")
        tally.first_failure = f"{status} {text}"[:SAMPLE_TEXT_LENGTH_MAX]
    return retry_after if status in (429, 503) else None


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
        "overload": overload_check(tally.statuses, tally.refusals_without_retry_after),
        "first_failure": tally.first_failure,
        "client_cpu_seconds": round(client_cpu_seconds, 3),
    }


def overload_check(statuses: Counter[str], refusals_without_retry_after: int) -> dict[str, Any]:
    """What overload must never look like: a timeout, a 5xx other than 503, a bare 503.

    When purse cannot keep up it answers 503 (or 429) with ``Retry-After`` at once;
    ``ok`` says this level kept to that.
    """
    other_5xx = sum(
        count
        for status, count in statuses.items()
        if status.isdigit() and 500 <= int(status) < 600 and status != "503"
    )
    found = {
        "timeouts": statuses.get(TIMEOUT, 0),
        "connection_errors": statuses.get(CONNECTION_ERROR, 0),
        "other_5xx": other_5xx,
        "503_without_retry_after": refusals_without_retry_after,
    }
    return {**found, "ok": not any(found.values())}
