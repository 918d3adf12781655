"""Jepsen's bank workload over HTTP: concurrent transfers and snapshot reads of every balance.

Clients move money between a fixed set of wallets while others read all balances
at once (the operators' snapshot). Every read must show the same total and no
negative balance; afterwards every acknowledged transfer must be there (none
lost), nothing may be there that was never asked for, and each balance must
equal the replay of the acknowledged transfers. Unknown outcomes (timeouts,
5xx) are resolved by replaying their key.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness import Client, Server, Summary, ledger_verify, minor, run_threads, size

ACCOUNTS = 16
BALANCE_MINOR = 100_000  # 1,000 CNY each


def test_bank(database_url: str, database_kind: str, seeded: Callable[..., None]) -> None:
    handles = [f"bank_{index:02d}" for index in range(ACCOUNTS)]
    seeded(people=dict.fromkeys(handles, BALANCE_MINOR), admins=["bank_auditor"])
    clients_count, ops_per_client = ACCOUNTS, size(60, 2_000)
    total_expected = ACCOUNTS * BALANCE_MINOR
    lock = threading.Lock()
    acknowledged: dict[str, tuple[str, str, int, str]] = {}  # key -> (from, to, amount, ref)
    unknown: dict[str, tuple[int, str, int]] = {}  # key -> (client index, to, amount)
    counts: Counter[str] = Counter()
    totals_seen: list[int] = []

    with Server(database_url, f"bank-{database_kind}") as server:
        clients = [Client(server.url, handle) for handle in handles]
        auditors = [Client(server.url, "bank_auditor") for _ in range(clients_count)]
        started = time.monotonic()
        ends = started + size(120, 900)

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

        run_threads(clients_count, work)
        seconds = time.monotonic() - started

        # Resolve what the clients could not know: the same key and body again.
        resolved = 0
        for key, (index, to, amount) in unknown.items():
            again = clients[index].send(to, f"{amount // 100}.{amount % 100:02d}", key)
            if again.outcome == "ok":
                acknowledged[key] = (handles[index], to, amount, again.body["reference"])
                resolved += 1
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
        "bank",
        database_kind,
        {
            "operations": counts["ok"] + counts["fail"] + counts["unknown"],
            "ok": counts["ok"],
            "fail": counts["fail"],
            "unknown": counts["unknown"],
            "unknown_resolved": resolved,
            "5xx": counts["5xx"],
            "reads": counts["reads"],
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
    assert record["ok"] > 0 and record["reads"] > 0
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
