"""The reliability suite's tools: real ``purse serve`` processes, plain HTTP clients, summaries.

Seeding (users, money) goes through purse's own services, as an operator would.
The clients do not: they speak HTTP with httpx like any integrator, make their
own idempotency keys, and classify each call as ok, failed (a definite refusal:
nothing happened) or unknown (timeout, reset, 5xx: it may or may not have).
Unknowns are resolved by sending the same key and body again: at once, as a
careful integrator does (``Client.call_until_answered``), or afterwards.

Sizes: ``PURSE_RELIABILITY_SIZE=full`` (``scripts/torture``) runs the full sizes
(docs/development.md); anything else runs the CI size. Every run is bounded in
operations and in seconds, listens on 127.0.0.1 only, and stops what it started.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "reliability"
FULL = os.environ.get("PURSE_RELIABILITY_SIZE", "ci") == "full"
PASSWORD = "river-lamp-quiet-74"
TEST_SECRET = "test-secret-key-" + "x" * 32
# The server hashes passwords like the seeding does (real argon2id, cheap parameters).
SERVER_ENV = {
    "PURSE_ENV": "test",
    "PURSE_SECRET_KEY": TEST_SECRET,
    "PURSE_PASSWORD_HASH_TIME_COST": "1",
    "PURSE_PASSWORD_HASH_MEMORY_COST_KIB": "8192",
    "PURSE_SIMULATOR_SETTLE_SECONDS": "0",
    "PURSE_LOG_LEVEL": "info",  # as in production: every request is logged, and scanned
}


# How long a client pauses before sending an unanswered request again, unless told.
RETRY_PAUSE_SECONDS = 0.2
RETRY_PAUSE_MAX_SECONDS = 2.0
# Times a request refused with 503 service_overloaded is sent again (see ``admitted``).
OVERLOAD_RETRIES_MAX = 30


def size(ci: int, full: int) -> int:
    return full if FULL else ci


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Servers ----------------------------------------------------------------------------------


class Server:
    """One ``purse serve`` process on 127.0.0.1, its log in the results folder."""

    def __init__(
        self,
        database_url: str,
        name: str,
        *,
        workers: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.extra_env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS / f"{name}.server.log"
        self.log_path.write_bytes(b"")  # this run's log only; restarts append to it
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("PURSE_")}
        return {**keep, **SERVER_ENV, "PURSE_DATABASE_URL": self.database_url, **self.extra_env}

    def start(self, timeout_seconds: float = 120) -> Server:
        command = [sys.executable, "-m", "purse.cli", "serve", "--port", str(self.port)]
        if not self.workers:
            command.append("--no-jobs")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        log.close()
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"purse serve exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"purse serve did not start in {timeout_seconds} s")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no flushing, no goodbye."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Worker:
    """One ``purse worker`` process (background jobs only)."""

    def __init__(self, database_url: str, name: str, *, env: dict[str, str] | None = None) -> None:
        self.server = Server(database_url, name, env=env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = self.server.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "purse.cli", "worker"],
            env={**self.server.environment(), "PURSE_WORKER_INTERVAL_SECONDS": "0.2"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def ledger_verify(database_url: str) -> dict[str, Any]:
    """``purse ledger verify --json`` against the database, as an operator runs it."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PURSE_")}
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "purse.cli", "ledger", "verify", "--json"],
        env={**keep, **SERVER_ENV, "PURSE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    report["exit_code"] = done.returncode
    return report


# Clients ----------------------------------------------------------------------------------


@dataclass
class Call:
    """One HTTP call as the client saw it."""

    outcome: str  # "ok", "fail" (a definite refusal) or "unknown"
    status: int | None
    body: dict[str, Any]
    seconds: float
    why: str = ""  # why an unknown is unknown: the transport error's name, or "http_503"
    retry_after_seconds: float | None = None  # what a 503 or 429 said in Retry-After


_OPEN_CLIENTS: list[httpx.Client] = []


def track(client: httpx.Client) -> httpx.Client:
    """Register an httpx client so :func:`close_all` closes it even when a test fails."""
    _OPEN_CLIENTS.append(client)
    return client


def close_all() -> None:
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def admitted(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The answer to a request, sent again while purse says it was too busy to take it on.

    ``503 service_overloaded`` means the request was refused before any route ran, so
    sending it again is always safe, and any client should, after Retry-After. Tests that
    are not about overload use this, so that a burst of their own (50 debits at once) on a
    slow machine tests what it means to, not how long purse lets a request wait in line.
    """
    rng = random.Random()
    response = http.request(method, path, **kwargs)
    for _ in range(OVERLOAD_RETRIES_MAX):
        if response.status_code != 503 or not response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            return response
        if response.json().get("code") != "service_overloaded":
            return response
        retry_after = response.headers.get("retry-after", "")
        pause = float(retry_after) if retry_after.isdigit() else RETRY_PAUSE_SECONDS
        time.sleep(min(pause, RETRY_PAUSE_MAX_SECONDS) * rng.uniform(0.5, 1.5))
        response = http.request(method, path, **kwargs)
    return response


class Client:
    """An integrator's client for one user: httpx, a bearer token, nothing of purse's code."""

    def __init__(self, base_url: str, handle: str, *, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url
        self.handle = handle
        self.http = track(httpx.Client(base_url=base_url, timeout=timeout_seconds))
        response = self.http.post(
            "/v1/auth/token", json={"identifier": handle, "password": PASSWORD}
        )
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Call:
        started = time.perf_counter()
        try:
            response = admitted(self.http, method, path, **kwargs)
        except httpx.TransportError as error:  # timeout, reset, refused: it may or may not
            elapsed = time.perf_counter() - started  # have happened
            return Call("unknown", None, {}, elapsed, why=type(error).__name__)
        elapsed = time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.text[:200]}
        retry_after = response.headers.get("retry-after", "")
        if response.status_code >= 500:
            return Call(
                "unknown",
                response.status_code,
                body,
                elapsed,
                why=f"http_{response.status_code}",
                retry_after_seconds=float(retry_after) if retry_after.isdigit() else None,
            )
        outcome = "ok" if response.status_code < 300 else "fail"
        return Call(
            outcome,
            response.status_code,
            body if isinstance(body, dict) else {"items": body},
            elapsed,
        )

    def call_until_answered(
        self,
        path: str,
        body: dict[str, Any],
        key: str,
        *,
        attempts_max: int,
        stop: threading.Event | None = None,
    ) -> list[Call]:
        """POST ``body`` with ``key``, and again with the same key while the outcome is unknown.

        As a careful integrator does: after a 503 it waits as Retry-After says (at most
        2 s), after a refused or broken connection a moment (the server may be restarting),
        with jitter. It stops after ``attempts_max`` calls, or when ``stop`` is set; the
        last call says how it ended (still unknown, for the caller to resolve later).
        """
        calls: list[Call] = []
        rng = random.Random(key)
        for _ in range(attempts_max):
            call = self.call("POST", path, json=body, headers={"Idempotency-Key": key})
            calls.append(call)
            if call.outcome != "unknown" or (stop is not None and stop.is_set()):
                break
            pause = min(call.retry_after_seconds or RETRY_PAUSE_SECONDS, RETRY_PAUSE_MAX_SECONDS)
            time.sleep(pause * rng.uniform(0.5, 1.5))
        return calls

    def send(self, to: str, value: str, key: str, note: str | None = None) -> Call:
        body = {"to": to, "amount": {"value": value, "currency": "CNY"}, "note": note}
        return self.call(
            "POST", "/v1/wallet/transfers", json=body, headers={"Idempotency-Key": key}
        )

    def operations(self, kind: str = "send") -> list[dict[str, Any]]:
        """Every operation of this user (made or received), through keyset pagination."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(10_000):
            params: dict[str, Any] = {"limit": 100, "kind": kind}
            if cursor:
                params["cursor"] = cursor
            page = self.http.get("/v1/wallet/activity", params=params).json()
            found.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return found
        raise AssertionError("activity did not end")

    def close(self) -> None:
        self.http.close()


def minor(value: str) -> int:
    """'12.34' CNY -> 1234 (the clients' own parsing, not purse's)."""
    whole, _, fraction = value.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` on ``count`` threads released together; their results in order."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait(timeout=60)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# Summaries --------------------------------------------------------------------------------


@dataclass
class Summary:
    """A test's figures: printed as one JSON line and written to the results folder."""

    test: str
    database: str
    figures: dict[str, Any] = field(default_factory=dict)

    def emit(self) -> dict[str, Any]:
        record = {"test": self.test, "database": self.database, "size": "full" if FULL else "ci"}
        record.update(self.figures)
        line = json.dumps(record, sort_keys=False, default=str)
        print(line)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{self.test}-{self.database}.json").write_text(line + "\n", encoding="utf-8")
        return record


@contextmanager
def deadline(seconds: float) -> Iterator[Callable[[], bool]]:
    """A wall-clock cap for a load loop: ``expired()`` says when to stop."""
    ends = time.monotonic() + seconds
    yield lambda: time.monotonic() > ends
