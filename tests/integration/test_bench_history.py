"""The history benchmark, run small: it loads what purse itself would write, and reports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from purse.bench.history import QUERIES, run_history_bench


def check_report(result: dict[str, Any], *, size: int, small: int) -> None:
    json.dumps(result)  # serialisable as it is
    assert result["sizes"] == {"small": small, "big": size}
    assert result["verify_ok"] is True
    assert result["load_operations_per_second"] > 0
    assert list(result["queries"]) == list(QUERIES)
    for name, row in result["queries"].items():
        assert row["small_ms"] > 0 and row["big_ms"] > 0, name
        assert row["ratio"] == pytest.approx(row["big_ms"] / row["small_ms"], rel=0.05), name


def test_history_bench_on_a_temporary_sqlite_file() -> None:
    result = run_history_bench(size=2_500, small=600, repeat=2, verify=True)
    assert result["backend"] == "sqlite"
    check_report(result, size=2_500, small=600)


def test_history_bench_on_postgres(postgres_admin_url: str) -> None:
    result = run_history_bench(
        size=1_200, small=300, repeat=1, database_url=postgres_admin_url, verify=True
    )
    assert result["backend"] == "postgresql"
    check_report(result, size=1_200, small=300)


@pytest.mark.parametrize(
    "change",
    [
        {"size": 10},
        {"small": 0},
        {"repeat": 0},
        {"database_url": "postgresql://bench@db.example.com/postgres"},
    ],
)
def test_history_bench_refuses_bad_arguments(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        run_history_bench(**{"size": 1_000, "small": 100, **change})
