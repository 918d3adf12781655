"""Overload: 256 clients at once against one ``purse serve``, each giving up after 2 s.

More clients than purse can serve at once must not leave them waiting until they
give up: what purse cannot take on is answered quickly with 503 (or 429) and a
Retry-After, and what it takes on is answered well within the clients' timeout.
The clients behave like a careful integrator: a new idempotency key per transfer,
the same key again after a 503, waiting as Retry-After says (with jitter).

Afterwards: 0 client timeouts, every refusal a 503 or 429 with Retry-After, some
transfers done, every acknowledged transfer there and no other (a 503 changed
nothing), and the ledger verifies. The figures (time to the first 503, latencies)
go to the summary. Before purse bounded the requests it works on, 95 % of the calls
timed out here and no transfer was acknowledged, though the server went on to
complete a thousand of them, seconds after their clients had given up.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from harness import PASSWORD, Server, Summary, ledger_verify, percentile, run_threads, size, track

CLIENTS = 256
PEOPLE = 32
TIMEOUT_SECONDS = 2.0
WAIT_MAX_SECONDS = 2.0  # the longest a client waits as Retry-After says


@dataclass
class Answer:
    status: int | None  # None: no answer within the timeout (or the connection broke)
    seconds: float
    started: float
    retry_after: float | None  # seconds, from the Retry-After header


def test_overload_is_answered_quickly(
    database_url: str, database_kind: str, seeded: Callable[..., None]
) -> None:
    load_seconds = size(10, 30)
    people = [f"load_{index:02d}" for index in range(PEOPLE)]
    seeded(people=dict.fromkeys(people, 100_000_000))
    answers: list[Answer] = []
    acknowledged: dict[str, str] = {}  # idempotency key -> reference
    lock = threading.Lock()

    with Server(database_url, f"overload-{database_kind}") as server:
        tokens = []
        with httpx.Client(base_url=server.url, timeout=30) as setup:
            for handle in people:
                response = setup.post(
                    "/v1/auth/token", json={"identifier": handle, "password": PASSWORD}
                )
                response.raise_for_status()
                tokens.append(response.json()["access_token"])
        # Made before the load starts: an httpx client takes a while to make (its TLS context).
        clients = [
            track(
                httpx.Client(
                    base_url=server.url,
                    timeout=TIMEOUT_SECONDS,
                    headers={"Authorization": f"Bearer {tokens[index % PEOPLE]}"},
                )
            )
            for index in range(CLIENTS)
        ]
        load_started = time.monotonic()
        ends = load_started + load_seconds

        def client(index: int) -> None:
            rng = random.Random(index)
            http = clients[index]
            me = people[index % PEOPLE]
            others = [p for p in people if p != me]
            pending: tuple[str, dict[str, object]] | None = None  # a transfer to send again
            for step in range(100_000):
                if time.monotonic() >= ends:
                    break
                started = time.monotonic()
                if pending is None and rng.random() < 0.5:
                    status, retry_after, _ = _read(http)
                else:
                    if pending is None:
                        transfer: dict[str, object] = {
                            "to": rng.choice(others),
                            "amount": {"value": "0.01", "currency": "CNY"},
                        }
                        pending = (f"load-{index}-{step}", transfer)
                    key, body = pending
                    status, retry_after, reference = _send(http, key, body)
                    if reference is not None:
                        with lock:
                            acknowledged[key] = reference
                    if status is not None and status < 500 and status != 429:
                        pending = None  # a definite answer: the next transfer gets a new key
                with lock:
                    answers.append(Answer(status, time.monotonic() - started, started, retry_after))
                if status in (429, 503):
                    time.sleep(rng.uniform(0.5, 1.5) * min(retry_after or 1.0, WAIT_MAX_SECONDS))

        run_threads(CLIENTS, client)
        load_took = time.monotonic() - load_started
        for http in clients:
            http.close()
        # Every transfer answered 201 is there once (a replay answers with the same one).
        with httpx.Client(base_url=server.url, timeout=30) as check:
            references: set[str] = set()
            for token in tokens:
                cursor: str | None = None
                for _ in range(10_000):
                    params: dict[str, str | int] = {"limit": 100, "kind": "send"}
                    if cursor:
                        params["cursor"] = cursor
                    page = check.get(
                        "/v1/wallet/activity",
                        params=params,
                        headers={"Authorization": f"Bearer {token}"},
                    ).json()
                    references.update(item["reference"] for item in page["items"])
                    cursor = page["next_cursor"]
                    if not cursor:
                        break

    statuses = Counter(str(answer.status) for answer in answers)
    refused = [answer for answer in answers if answer.status in (429, 503)]
    served = [answer for answer in answers if answer.status is not None]
    record = Summary(
        "overload",
        database_kind,
        {
            "clients": CLIENTS,
            "client_timeout_seconds": TIMEOUT_SECONDS,
            "load_seconds": round(load_took, 1),
            "calls": len(answers),
            "statuses": dict(sorted(statuses.items())),
            "timeouts": statuses["None"],
            "refused_without_retry_after": sum(1 for a in refused if a.retry_after is None),
            "other_errors": sum(
                count
                for status, count in statuses.items()
                if status not in ("200", "201", "429", "503", "None")
            ),
            "transfers_acknowledged": len(acknowledged),
            "transfers_per_second": round(len(acknowledged) / load_took, 1),
            "acknowledged_missing": len(set(acknowledged.values()) - references),
            "unexpected": len(references - set(acknowledged.values())),
            "first_503_after_seconds": round(min(a.started for a in refused) - load_started, 2)
            if refused
            else None,
            "seconds_p50": round(percentile([a.seconds for a in served], 0.5), 3),
            "seconds_p99": round(percentile([a.seconds for a in served], 0.99), 3),
            "refusal_seconds_p50": round(percentile([a.seconds for a in refused], 0.5), 3),
            "refusal_seconds_p99": round(percentile([a.seconds for a in refused], 0.99), 3),
            "ok_seconds_p99": round(
                percentile([a.seconds for a in served if a.status in (200, 201)], 0.99), 3
            ),
        },
    ).emit()
    verify = ledger_verify(database_url)
    assert record["timeouts"] == 0, record
    assert record["other_errors"] == 0, record
    assert record["refused_without_retry_after"] == 0, record
    assert record["transfers_acknowledged"] > 0, record
    assert record["acknowledged_missing"] == 0 and record["unexpected"] == 0, record
    assert verify["ok"], verify["problems"]


def _read(http: httpx.Client) -> tuple[int | None, float | None, None]:
    try:
        response = http.get("/v1/wallet/balances")
    except httpx.TransportError:
        return None, None, None
    return response.status_code, _retry_after(response), None


def _send(
    http: httpx.Client, key: str, body: dict[str, object]
) -> tuple[int | None, float | None, str | None]:
    try:
        response = http.post("/v1/wallet/transfers", json=body, headers={"Idempotency-Key": key})
    except httpx.TransportError:
        return None, None, None
    reference = response.json().get("reference") if response.status_code == 201 else None
    return response.status_code, _retry_after(response), reference


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None
