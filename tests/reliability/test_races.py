"""Races over HTTP against a real server: one key sent many times at once, a hot account,
and an overdraft race. No 5xx, no "database is locked" for a client, money moved exactly once."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from harness import Client, Server, Summary, ledger_verify, minor, percentile, run_threads, size


def test_idempotency_race(
    database_url: str, database_kind: str, seeded: Callable[..., None]
) -> None:
    keys, copies = size(30, 200), size(8, 16)
    seeded(people={"payer_a": 10_000_000, "payer_b": 10_000_000, "payee": 0})
    statuses: Counter[int | None] = Counter()
    references: dict[str, set[str]] = defaultdict(set)
    lock = threading.Lock()
    # On PostgreSQL the copies of a key go to two server processes, as behind a load balancer.
    servers_count = 2 if database_kind == "postgres" else 1
    with ExitStack() as stack:
        servers = [
            stack.enter_context(Server(database_url, f"idempotency-{database_kind}-{n}"))
            for n in range(servers_count)
        ]
        payer = [Client(servers[c % servers_count].url, "payer_a") for c in range(copies)]

        def fire(job: tuple[int, int]) -> None:
            key_index, copy = job
            call = payer[copy].send("payee", "1.23", f"race-{key_index}", note=f"race-{key_index}")
            with lock:
                statuses[call.status] += 1
                if call.status == 201:
                    references[f"race-{key_index}"].add(call.body["reference"])

        jobs = [(k, c) for k in range(keys) for c in range(copies)]
        random.Random(7).shuffle(jobs)
        with ThreadPoolExecutor(max_workers=copies) as pool:
            list(pool.map(fire, jobs))

        # The same key with another body is refused, and moves nothing.
        reused = [
            payer[0].send("payee", "9.99", f"race-{k}", note=f"race-{k}")
            for k in range(min(keys, 10))
        ]
        # The same key from another user is that user's own request: never the first user's answer.
        other = Client(servers[-1].url, "payer_b")
        theirs = other.send("payee", "1.23", "race-0", note="race-0")
        operations = payer[0].operations("send")
        for client in payer + [other]:
            client.close()

    per_key = Counter(op["note"] for op in operations)
    verify = ledger_verify(database_url)
    record = Summary(
        "idempotency_race",
        database_kind,
        {
            "keys": keys,
            "copies_per_key": copies,
            "server_processes": servers_count,
            "statuses": {str(status): count for status, count in sorted(statuses.items(), key=str)},
            "keys_with_one_transfer": sum(1 for k in range(keys) if per_key[f"race-{k}"] == 1),
            "keys_with_two_or_more": sum(1 for count in per_key.values() if count > 1),
            "replays_that_differ": sum(1 for refs in references.values() if len(refs) > 1),
            "other_body_refused": sum(
                1
                for call in reused
                if call.status == 422 and call.body.get("code") == "idempotency_key_reused"
            ),
            "other_user_got_own_transfer": theirs.status == 201
            and theirs.body["reference"] not in references["race-0"],
            "5xx": sum(count for status, count in statuses.items() if (status or 0) >= 500),
            "ledger_verify_ok": verify["ok"],
        },
    ).emit()
    assert record["keys_with_one_transfer"] == keys and record["keys_with_two_or_more"] == 0
    assert record["replays_that_differ"] == 0 and record["5xx"] == 0
    assert set(record["statuses"]) <= {"201", "409"}
    assert record["other_body_refused"] == min(keys, 10)
    assert record["other_user_got_own_transfer"]
    assert verify["ok"], verify["problems"]


def test_hot_account_and_overdraft_race(
    database_url: str, database_kind: str, seeded: Callable[..., None]
) -> None:
    clients_count, per_client = size(8, 32), size(30, 250)
    payers = [f"hot_{index:02d}" for index in range(clients_count)]
    seeded(people={**dict.fromkeys(payers, 1_000_000), "merchant": 0, "thin": 100})
    latencies: list[float] = []
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    with Server(database_url, f"hot-{database_kind}") as server:
        clients = [Client(server.url, handle) for handle in payers]
        started = time.monotonic()

        def pay(index: int) -> None:
            for step in range(per_client):
                call = clients[index].send("merchant", "0.50", f"hot-{index}-{step}")
                with lock:
                    latencies.append(call.seconds)
                    counts[call.outcome] += 1
                    counts["5xx"] += (call.status or 0) >= 500
                    counts["locked"] += "locked" in str(call.body).lower()

        run_threads(clients_count, pay)
        seconds = time.monotonic() - started
        merchant = Client(server.url, "merchant")
        received = minor(
            next(b for b in merchant.call("GET", "/v1/wallet/balances").body["items"])["balance"][
                "value"
            ]
        )

        # Overdraft: 50 debits of 0.10 against a balance of 1.00 at once; exactly 10 may pass.
        thin = [Client(server.url, "thin") for _ in range(10)]
        overdraft = run_threads(
            50, lambda index: thin[index % 10].send("merchant", "0.10", f"overdraft-{index}")
        )
        thin_balance = minor(
            thin[0].call("GET", "/v1/wallet/balances").body["items"][0]["balance"]["value"]
        )
        log = server.log_text()
        for client in clients + thin + [merchant]:
            client.close()

    verify = ledger_verify(database_url)
    overdraft_outcomes = Counter(
        "ok" if call.status == 201 else str(call.body.get("code")) for call in overdraft
    )
    record = Summary(
        "hot_account",
        database_kind,
        {
            "transfers": clients_count * per_client,
            "ok": counts["ok"],
            "fail": counts["fail"],
            "unknown": counts["unknown"],
            "transfers_per_second": round(counts["ok"] / seconds),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "5xx": counts["5xx"],
            "database_locked_to_client": counts["locked"],
            "database_locked_in_log": log.lower().count("database is locked"),
            "merchant_balance_exact": received == counts["ok"] * 50,
            "overdraft_ok": overdraft_outcomes["ok"],
            "overdraft_refused": overdraft_outcomes["insufficient_funds"],
            "overdraft_balance_after": thin_balance,
            "ledger_verify_ok": verify["ok"],
        },
    ).emit()
    assert record["ok"] == record["transfers"] and record["5xx"] == 0
    assert record["database_locked_to_client"] == 0 and record["merchant_balance_exact"]
    assert (
        record["overdraft_ok"],
        record["overdraft_refused"],
        record["overdraft_balance_after"],
    ) == (
        10,
        40,
        0,
    )
    assert verify["ok"], verify["problems"]
