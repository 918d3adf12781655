"""The ledger benchmark, run small: every mode completes, and the ledger verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from purse.bench.ledger import MODES, run_ledger_bench
from purse.bench.workload import make_workload

SMALL: dict[str, Any] = {
    "transfers": 200,
    "accounts": 10,
    "concurrency": 2,
    "batch_size": 50,
    "seconds_max": 20.0,
}


def run_small(*, hot_share: float, database_url: str | None) -> dict[str, Any]:
    return run_ledger_bench(hot_share=hot_share, database_url=database_url, **SMALL)


def check_report(result: dict[str, Any], *, transfers: int) -> None:
    json.dumps(result)  # serialisable as it is
    modes = result["modes"]
    assert list(modes) == list(MODES)
    for name, mode in modes.items():
        assert mode["transfers"] == transfers, (name, mode)
        assert mode["errors"] == 0, (name, mode)
        assert mode["stopped_by"] == "count"
        assert mode["transfers_per_second"] > 0
        assert 0 < mode["p50_ms"] <= mode["p99_ms"]
        assert mode["transfer_p50_ms"] == mode["p50_ms"]
        assert mode["first_error"] is None
    assert modes["service_per_commit"]["calls"] == transfers
    assert modes["service_batched"]["transfers_per_call"] == SMALL["batch_size"]
    for name in ("service_per_commit", "service_batched"):
        assert modes[name]["verify_ok"] is True
    for name in ("raw_per_commit", "raw_batched"):
        assert modes[name]["sums_ok"] is True
    ratios = result["ratios"]
    assert set(ratios) == {
        "service_per_commit_vs_raw_per_commit",
        "service_batched_vs_raw_batched",
    }
    assert all(isinstance(v, float) and v > 0 for v in ratios.values())
    assert result["verify_ok"] is True


@pytest.mark.parametrize("hot_share", [0.0, 0.5])
def test_ledger_bench_on_a_temporary_sqlite_file(hot_share: float) -> None:
    result = run_small(hot_share=hot_share, database_url=None)
    assert result["backend"] == "sqlite"
    check_report(result, transfers=200)


def test_ledger_bench_beside_a_given_sqlite_path_leaves_it_alone(tmp_path: Path) -> None:
    existing = tmp_path / "purse.db"
    existing.write_bytes(b"not a database")
    result = run_small(hot_share=0.2, database_url=f"sqlite:///{existing}")
    check_report(result, transfers=200)
    assert existing.read_bytes() == b"not a database"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["purse.db"]  # bench files removed


def test_ledger_bench_stops_at_its_time_limit() -> None:
    result = run_ledger_bench(
        transfers=100_000,
        accounts=10,
        concurrency=1,
        hot_share=0.0,
        database_url=None,
        batch_size=1,
        seconds_max=0.3,
    )
    per_commit = result["modes"]["service_per_commit"]
    assert per_commit["stopped_by"] == "time"
    assert 0 < per_commit["transfers"] < 100_000
    assert per_commit["seconds"] < 5
    assert per_commit["verify_ok"] is True


def test_workload_is_reproducible_and_moves_between_distinct_wallets() -> None:
    first = make_workload(transfers=500, accounts=3, hot_share=0.5)
    assert first == make_workload(transfers=500, accounts=3, hot_share=0.5)
    assert all(move.debit != move.credit for move in first)
    assert all(isinstance(move.amount_minor, int) and move.amount_minor > 0 for move in first)
    hot = sum(1 for move in first if move.credit < 0)
    assert 150 < hot < 350
    assert len({move.key for move in first}) == 500


@pytest.mark.parametrize(
    "change",
    [
        {"accounts": 1},
        {"transfers": 0},
        {"concurrency": 0},
        {"hot_share": 1.5},
        {"batch_size": 10_000},
        {"database_url": "mysql://localhost/x"},
        {"database_url": "postgresql://bench@db.example.com/postgres"},
    ],
)
def test_ledger_bench_refuses_bad_arguments(change: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {**SMALL, "hot_share": 0.0, "database_url": None, **change}
    with pytest.raises(ValueError):
        run_ledger_bench(**arguments)


def test_a_run_compares_itself_with_an_earlier_one(tmp_path: Path) -> None:
    """``--compare OLD.json``: the earlier run is read first (a wrong file fails before
    anything runs), and the table of changes follows the run's own."""
    from typer.testing import CliRunner

    from purse.cli import app

    runner = CliRunner()
    small = ["--transfers", "40", "--accounts", "5", "--batch-size", "20", "--seconds-max", "20"]
    earlier = runner.invoke(app, ["bench", "ledger", *small, "--json"])
    assert earlier.exit_code == 0, earlier.output
    old = tmp_path / "old.json"
    old.write_text(earlier.stdout, "utf-8")

    later = runner.invoke(app, ["bench", "ledger", *small, "--compare", str(old)])
    assert later.exit_code == 0, later.output
    assert "purse bench ledger: old → new" in later.stdout
    assert "ratios.service_batched_vs_raw_batched" in later.stdout

    http_report = tmp_path / "http.json"
    http_report.write_text(json.dumps({"benchmark": "http", "ratios": {}}), "utf-8")
    for wrong, says in ((http_report, "not the same workload"), (tmp_path / "none", "cannot read")):
        refused = runner.invoke(app, ["bench", "ledger", *small, "--compare", str(wrong)])
        assert refused.exit_code == 2 and says in refused.output
        assert "purse bench ledger" not in refused.stdout  # nothing ran
    refused = runner.invoke(app, ["bench", "http", "--compare", str(old), "--seconds", "1"])
    assert refused.exit_code == 2 and "not the same workload" in refused.output
