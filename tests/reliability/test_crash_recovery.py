"""Crashes: kill -9 of the server, of the worker and (on PostgreSQL) of the database, under load.

Clients send money and start withdrawals (holds, settled by the worker through
the bank simulator) while a chaos thread kills and restarts processes. Every
answer the clients got is kept. A call that got no definite answer (a timeout,
a refused or broken connection, a 503) is unknown: the client sends it again
with the same key, as an integrator would, waiting as Retry-After says, until it
gets an answer; those still unknown when the load stops are resolved afterwards
by replaying their key. Then: every acknowledged operation is there (0 lost),
each key made one operation (0 duplicated), none is there that nobody asked for
(0 unexpected), every unknown got an answer (0 unresolved), no withdrawal stays
pending, SQLite's integrity check is ok and the ledger verifies.

Nothing here waits for a fixed time that a slow machine could overrun: a server
down for a restart is retried until it is back (each key a bounded number of
times), and only the keys in flight when the load stops are left to resolve.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness import Client, Server, Summary, Worker, ledger_verify, run_threads, size

from pgserver import PostgresServer

CLIENTS = 4
# Tries of one key while the load runs: at 0.2 s apart, a minute of a server restarting.
ATTEMPTS_MAX = 300
# Tries of a key left unknown when the load stopped, with the server up.
RESOLVE_ATTEMPTS_MAX = 20
# The worker asks the bank again about a withdrawal nobody heard of after this long.
FOLLOW_UP_SECONDS = 5


def test_crash(
    database_url: str,
    database_kind: str,
    seeded: Callable[..., None],
    postgres_server: PostgresServer | None,
) -> None:
    # Clients keep going until the chaos plan is done, at most this many calls each.
    clients_count, per_client = size(CLIENTS, 8), size(2_000, 20_000)
    server_kills, worker_kills = size(3, 10), size(2, 5)
    database_kills = size(1, 3) if database_kind == "postgres" and postgres_server else 0
    handles = [f"crash_{index}" for index in range(clients_count)]
    seeded(people={**dict.fromkeys(handles, 1_000_000), "crash_sink": 0})
    lock = threading.Lock()
    sent: dict[str, tuple[int, str, dict[str, Any]]] = {}  # key -> (client, path, body)
    answers: dict[str, str] = {}  # key -> reference (acknowledged)
    unknown: set[str] = set()
    counts: Counter[str] = Counter()
    stop = threading.Event()

    env = {"PURSE_PROVIDER_FOLLOW_UP_SECONDS": str(FOLLOW_UP_SECONDS)}
    server = Server(database_url, f"crash-{database_kind}", workers=False, env=env).start()
    worker = Worker(database_url, f"crash-worker-{database_kind}", env=env).start()
    try:
        clients = [Client(server.url, handle, timeout_seconds=5) for handle in handles]
        cards = [
            client.call(
                "POST",
                "/v1/wallet/funding-sources",
                json={
                    "kind": "card",
                    "number": "4242424242424242",
                    "expiry_month": 12,
                    "expiry_year": 2099,
                    "holder_name": "Crash",
                },
            ).body["id"]
            for client in clients
        ]

        def request(index: int, key: str, path: str, body: dict[str, Any]) -> None:
            with lock:
                sent[key] = (index, path, body)
            calls = clients[index].call_until_answered(
                path, body, key, attempts_max=ATTEMPTS_MAX, stop=stop
            )
            with lock:
                for call in calls:
                    counts[call.outcome] += 1
                    if call.outcome == "unknown":
                        counts[f"unknown_{call.why}"] += 1
                counts["keys_retried"] += len(calls) > 1
                last = calls[-1]
                if last.outcome == "ok":
                    answers[key] = last.body["reference"]
                elif last.outcome == "unknown":
                    unknown.add(key)

        def load(index: int) -> None:
            rng = random.Random(500 + index)
            for step in range(per_client):
                if stop.is_set():
                    return
                key = f"crash-{index}-{step}"
                if rng.random() < 0.25:
                    body = {
                        "funding_source_id": cards[index],
                        "amount": {"value": "1.00", "currency": "CNY"},
                    }
                    request(index, key, "/v1/wallet/withdrawals", body)
                else:
                    body = {"to": "crash_sink", "amount": {"value": "0.37", "currency": "CNY"}}
                    request(index, key, "/v1/wallet/transfers", body)

        chaos_errors: list[BaseException] = []

        def chaos() -> None:
            try:
                unleash()
            except BaseException as error:  # surfaced below: a broken fault injector fails fast
                chaos_errors.append(error)
            finally:
                time.sleep(1)  # some load after the last restart too
                stop.set()

        plan = ["server"] * server_kills + ["worker"] * worker_kills + ["database"] * database_kills
        random.Random(11).shuffle(plan)

        def unleash() -> None:
            for target in plan:
                time.sleep(size(2, 4))
                with lock:
                    counts[f"kills_{target}"] += 1
                if target == "server":
                    server.kill()
                    server.start()
                elif target == "worker":
                    worker.kill()
                    worker.start()
                else:
                    assert postgres_server is not None
                    postgres_server.kill()
                    postgres_server.restart_after_crash()

        chaos_thread = threading.Thread(target=chaos)
        started = time.monotonic()
        chaos_thread.start()
        run_threads(clients_count, load)
        # Bounded by the plan: each restart gives up after Server.start's 120 s.
        chaos_thread.join(timeout=len(plan) * 150)
        seconds = time.monotonic() - started
        assert not chaos_thread.is_alive(), "the fault injection did not finish"
        assert not chaos_errors, f"the fault injection itself failed: {chaos_errors!r}"

        # Resolve every key still unknown by sending it again with the same key and body.
        unresolved = 0
        counts["unknown_when_load_stopped"] = len(unknown)
        for key in sorted(unknown):
            index, path, body = sent[key]
            last = clients[index].call_until_answered(
                path, body, key, attempts_max=RESOLVE_ATTEMPTS_MAX
            )[-1]
            if last.outcome == "ok":
                answers[key] = last.body["reference"]
            unresolved += last.outcome == "unknown"
        # The worker settles what is left; wait (bounded) until nothing is pending. A
        # withdrawal whose server died before it asked the bank is asked by the follow-up job.
        deadline = time.monotonic() + 60 + 2 * FOLLOW_UP_SECONDS
        while time.monotonic() < deadline:
            if all(
                not client.call("GET", "/v1/wallet/activity", params={"status": "pending"}).body[
                    "items"
                ]
                for client in clients
            ):
                break
            time.sleep(0.5)
        present: dict[str, dict[str, Any]] = {}
        for client in clients:
            for kind in ("send", "withdrawal"):
                for operation in client.operations(kind):
                    present[operation["reference"]] = operation
        still_pending = sum(1 for op in present.values() if op["status"] == "pending")
        for client in clients:
            client.close()
    finally:
        stop.set()
        worker.stop()
        server.stop()

    references = list(answers.values())
    integrity = "not sqlite"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    verify = ledger_verify(database_url)
    record = Summary(
        "crash",
        database_kind,
        {
            "keys": len(sent),
            "calls": sum(counts[k] for k in ("ok", "fail", "unknown")),
            "ok": counts["ok"],
            "fail": counts["fail"],
            "unknown": counts["unknown"],
            "unknown_why": {
                k.removeprefix("unknown_"): v
                for k, v in sorted(counts.items())
                if k.startswith("unknown_") and k != "unknown_when_load_stopped"
            },
            "keys_retried": counts["keys_retried"],
            "unknown_when_load_stopped": counts["unknown_when_load_stopped"],
            "kills_server": counts["kills_server"],
            "kills_worker": counts["kills_worker"],
            "kills_database": counts["kills_database"],
            "acknowledged": len(answers),
            "lost": len(set(references) - set(present)),
            "duplicated": len(references) - len(set(references)),
            "unexpected": len(set(present) - set(references)),
            "unresolved": unresolved,
            "still_pending": still_pending,
            "sqlite_integrity": integrity,
            "ledger_verify_ok": verify["ok"],
            "seconds": round(seconds, 1),
        },
    ).emit()
    assert record["kills_server"] == server_kills and record["kills_worker"] == worker_kills
    assert record["kills_database"] == database_kills
    for figure in ("lost", "duplicated", "unexpected", "unresolved", "still_pending"):
        assert record[figure] == 0, (figure, record)
    assert integrity in ("ok", "not sqlite")
    assert verify["ok"], verify["problems"]
