"""``purse bench payment`` on both databases: every cycle completes on both sides, the
purse side's ledger verifies afterwards, and the floor wrote no transfer."""

from __future__ import annotations

import pytest

from purse.bench.payment import run_payment_bench


def test_the_payment_bench_runs_both_sides_and_the_ledger_verifies(database_url: str) -> None:
    url = None if database_url.startswith("sqlite") else database_url
    result = run_payment_bench(threads=2, cycles=12, seconds_max=60, database_url=url)
    assert result["workload"] == "payment" and set(result["sides"]) == {"purse", "no_ledger"}
    purse, floor = result["sides"]["purse"], result["sides"]["no_ledger"]
    assert purse["errors"] == 0 and floor["errors"] == 0, (purse, floor)
    assert purse["cycles"] == 12 and floor["cycles"] == 12
    assert purse["ledger_verified"] is True and floor["ledger_verified"] is None
    assert 0 < result["ratio"] and purse["p50_ms"] <= purse["p99_ms"]


def test_the_payment_bench_stops_at_its_time_limit() -> None:
    result = run_payment_bench(threads=1, cycles=10**6, seconds_max=0.5, database_url=None)
    for side in result["sides"].values():
        assert 0 < side["cycles"] < 10**6 and side["seconds"] < 30


@pytest.mark.parametrize("url", ["mysql://localhost/x", "postgresql://bench@db.example.com/p"])
def test_the_payment_bench_refuses_a_database_it_must_not_touch(url: str) -> None:
    with pytest.raises(ValueError):
        run_payment_bench(threads=1, cycles=1, seconds_max=1, database_url=url)
