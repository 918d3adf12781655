"""Jepsen's bank workload over HTTP: concurrent transfers and snapshot reads of every balance.

Clients move money between a fixed set of wallets while others read all balances
at once (the operators' snapshot). Every read must show the same total and no
negative balance; afterwards every acknowledged transfer must be there (none
lost), nothing may be there that was never asked for, and each balance must
equal the replay of the acknowledged transfers. Unknown outcomes (timeouts,
5xx) are resolved by replaying their key.

The pause variant stops the server process (SIGSTOP) for longer than the
clients' 1 s timeout, again and again, then lets it go on (SIGCONT): requests
the clients gave up on still complete, and must be found exactly once.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from harness import Client, Server, Summary, ledger_verify, minor, run_threads, size

ACCOUNTS = 16
BALANCE_MINOR = 100_000  # 1,000 CNY each


def test_bank(database_url: str, database_kind: str, seeded: Callable[..., None]) -> None:
    bank_workload(database_url, database_kind, seeded, pauses=False)


def test_bank_with_pauses(
    database_url: str, database_kind: str, seeded: Callable[..., None]
) -> None:
    bank_workload(database_url, database_kind, seeded, pauses=True)


def bank_workload(
    database_url: str, database_kind: str, seeded: Callable[..., None], *, pauses: bool
) -> None:
    handles = [f"bank_{index:02d}" for index in range(ACCOUNTS)]
    seeded(people=dict.fromkeys(handles, BALANCE_MINOR), admins=["bank_auditor"])
    clients_count, ops_per_client = ACCOUNTS, size(60, 2_000)
    total_expected = ACCOUNTS * BALANCE_MINOR
    lock = threading.Lock()
    acknowledged: dict[str, tuple[str, str, int, str]] = {}  # key -> (from, to, amount, ref)
    unknown: dict[str, tuple[int, str, int]] = {}  # key -> (client index, to, amount)
    counts: Counter[str] = Counter()
    totals_seen: list[int] = []

    name = "bank_paused" if pauses else "bank"
    timeout = 1.0 if pauses else 10.0
    with Server(database_url, f"{name}-{database_kind}") as server:
        clients = [Client(server.url, h, timeout_seconds=timeout) for h in handles]
        auditors = [
            Client(server.url, "bank_auditor", timeout_seconds=timeout)
            for _ in range(clients_count)
        ]
        started = time.monotonic()
        ends = started + size(120, 900)
        load_done = threading.Event()

        def pause_now_and_then() -> None:
            """SIGSTOP for 1.5 s (past the clients' timeout), SIGCONT, run 1-3 s; repeat."""
            rng = random.Random(99)
            while not load_done.wait(rng.uniform(1.0, 3.0)):
                server.signal(signal.SIGSTOP)
                counts["pauses"] += 1
                time.sleep(1.5)
                server.signal(signal.SIGCONT)

        def work(index: int) -> None:
            rng = random.Random(1000 + index)
            for step in range(ops_per_client):
                if time.monotonic() > ends:
                    return
                if rng.random() < 0.5:
                    snapshot = auditors[index].call(
                        "GET", "/v1/admin/balances", params={"currency": "CNY", "limit": 100}
                    )
                    with lock:
                        counts["reads"] += 1
                        if snapshot.outcome == "unknown" and snapshot.status is None:
                            counts["reads_timed_out"] += 1  # a pause: nothing to judge
                            continue
                        if snapshot.outcome != "ok":
                            counts["read_errors"] += 1
                            continue
                        total = minor(snapshot.body["total"]["value"])
                        totals_seen.append(total)
                        counts["wrong_total_reads"] += total != total_expected
                        counts["negative_reads"] += any(
                            minor(w["balance"]["value"]) < 0 for w in snapshot.body["wallets"]
                        )
                    continue
                to = rng.choice([h for h in handles if h != handles[index]])
                amount = rng.randint(1, 5_000)
                key = f"bank-{index}-{step}"
                call = clients[index].send(to, f"{amount // 100}.{amount % 100:02d}", key)
                with lock:
                    counts[call.outcome] += 1
                    counts["5xx"] += (call.status or 0) >= 500
                    if call.outcome == "ok":
                        acknowledged[key] = (handles[index], to, amount, call.body["reference"])
                    elif call.outcome == "unknown":
                        unknown[key] = (index, to, amount)
                    else:
                        counts[f"fail:{call.body.get('code')}"] += 1

        pauser = threading.Thread(target=pause_now_and_then, daemon=True)
        if pauses:
            pauser.start()
        try:
            run_threads(clients_count, work)
        finally:
            load_done.set()
            if pauses:
                pauser.join(timeout=10)
                server.signal(signal.SIGCONT)
        seconds = time.monotonic() - started
        for client in clients + auditors:
            client.http.timeout = httpx.Timeout(30.0)  # the pauses are over: wait for answers

        # Resolve what the clients could not know: the same key and body again.
        # A definite answer (done, or refused and so never done) resolves it.
        resolved = done_after_all = 0
        for key, (index, to, amount) in unknown.items():
            for _attempt in range(10):
                again = clients[index].send(to, f"{amount // 100}.{amount % 100:02d}", key)
                if again.outcome == "ok":
                    acknowledged[key] = (handles[index], to, amount, again.body["reference"])
                    done_after_all += 1
                if again.outcome != "unknown":
                    resolved += 1
                    break
                time.sleep(0.5)
        final = auditors[0].call("GET", "/v1/admin/balances", params={"currency": "CNY"}).body
        present: dict[str, dict[str, Any]] = {}
        for client in clients:
            for operation in client.operations("send"):
                present[operation["reference"]] = operation
        for client in clients + auditors:
            client.close()

    expected = dict.fromkeys(handles, BALANCE_MINOR)
    for sender, to, amount, _reference in acknowledged.values():
        expected[sender] -= amount
        expected[to] += amount
    balances = {w["handle"]: minor(w["balance"]["value"]) for w in final["wallets"]}
    references = {reference for *_, reference in acknowledged.values()}
    lost = len(references - set(present))
    unexpected = len(set(present) - references)  # sends only: the seeding made top-ups
    verify = ledger_verify(database_url)
    record = Summary(
        name,
        database_kind,
        {
            "pauses": counts["pauses"],
            "client_timeout_seconds": timeout,
            "operations": counts["ok"] + counts["fail"] + counts["unknown"],
            "ok": counts["ok"],
            "fail": counts["fail"],
            "unknown": counts["unknown"],
            "unknown_resolved": resolved,
            "unknown_found_done": done_after_all,
            "5xx": counts["5xx"],
            "reads": counts["reads"],
            "reads_timed_out": counts["reads_timed_out"],
            "read_errors": counts["read_errors"],
            "wrong_total_reads": counts["wrong_total_reads"],
            "negative_reads": counts["negative_reads"],
            "min_total_seen": min(totals_seen, default=None),
            "max_total_seen": max(totals_seen, default=None),
            "lost": lost,
            "unexpected": unexpected,
            "wrong_balances": sum(balances.get(h) != expected[h] for h in handles),
            "ledger_verify_ok": verify["ok"],
            "seconds": round(seconds, 1),
            "requests_per_second": round(
                (counts["ok"] + counts["fail"] + counts["reads"]) / seconds
            ),
        },
    ).emit()
    assert record["ok"] > 0 and record["reads"] > record["reads_timed_out"]
    if pauses:
        assert record["pauses"] > 0 and record["unknown"] > 0, record  # the fault did bite
    for figure in (
        "5xx",
        "read_errors",
        "wrong_total_reads",
        "negative_reads",
        "lost",
        "unexpected",
        "wrong_balances",
    ):
        assert record[figure] == 0, (figure, record)
    assert record["unknown"] == record["unknown_resolved"]
    assert verify["ok"], verify["problems"]
