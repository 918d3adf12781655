"""``purse bench http`` run small on SQLite: real sends through a real server, and the floor.

Only what a run must hold on any machine is checked (no timing): every figure is there,
every send was answered 2xx and recorded by the ledger, money moved and was conserved, the
floor ran, and the comparison reads the result back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from factories import make_settings
from purse.app import create_app
from purse.bench.floor import NOOP_PATH, floor_app
from purse.bench.http import WARMUP_SENDS
from purse.bench.load import LevelSpec, Sender, _seconds, run_level
from purse.bench.report import compare
from purse.cli import app

runner = CliRunner()

SENDS = 20

SILENT_SECONDS = 5.0  # how long the test server keeps a "/silent" request unanswered

FIGURES = ("requests_per_second", "ok_per_second", "p50_ms", "p99_ms", "statuses", "seconds")


@pytest.mark.parametrize(
    ("backend", "workers"),
    [("sqlite", 1), ("postgres", 1), ("postgres", 2)],
    ids=["sqlite", "postgres", "postgres-2-processes"],
)
def test_bench_http_sends_for_real_and_measures_the_floor(
    tmp_path: Path, backend: str, workers: int, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "bench" / "http.json"
    database = []
    if backend == "postgres":  # a fresh purse_bench_* database on the tests' server
        database = ["--database-url", str(request.getfixturevalue("postgres_admin_url"))]
    result = runner.invoke(
        app,
        [
            "bench",
            "http",
            "--clients",
            "1,2",
            "--sends",
            str(SENDS),
            "--seconds",
            "60",  # the count stops each level: this bound is for a stuck server
            "--timeout",
            "30",
            "--out",
            str(out),
            "--workers",
            str(workers),
            *database,
        ],
    )
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(out.read_text("utf-8"))
    assert report["benchmark"] == "http"
    assert report["backend"] == {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
    assert report["parameters"]["clients"] == [1, 2]
    assert report["parameters"]["workers"] == workers
    for side in ("purse", "floor"):
        assert list(report[side]) == ["1", "2"]
        for level, row in report[side].items():
            assert all(name in row for name in FIGURES), (side, level, row)
            assert row["clients"] == int(level)
            assert row["requests"] == SENDS
            assert row["statuses"] == {"201": SENDS}, (side, level, row)
            assert row["ok"] == SENDS and row["first_failure"] is None
            assert row["ok_per_second"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    # The server's CPU is its processes' sum: a send costs milliseconds of it, even when the
    # requests are served by child processes (--workers 2) and not by the one started.
    assert all(row["server_cpu_ms_per_request"] >= 1.0 for row in report["purse"].values())
    assert set(report["ratios"]) == {"1", "2"}
    assert all(value > 0 for value in report["ratios"].values())

    checks = report["checks"]
    sends = WARMUP_SENDS + 2 * SENDS
    assert checks["sends_ok"] == sends
    assert checks["sends_recorded"] == sends  # every 2xx is a transfer in the ledger
    assert checks["balances_changed"] >= 1
    assert checks["balance_total_after"] == checks["balance_total_before"] != "0"
    assert checks["verify_ok"] is True

    chart = out.with_suffix(".png")
    assert report["chart"] == str(chart)
    assert chart.read_bytes().startswith(b"\x89PNG")

    # The comparison reads it back: the same run against itself changes nothing.
    compared = runner.invoke(app, ["bench", "compare", str(out), str(out), "--json"])
    assert compared.exit_code == 0, compared.output
    rows = json.loads(compared.stdout)
    assert {"figure": "ratios.1", "change_percent": 0.0} in [
        {"figure": row["figure"], "change_percent": row["change_percent"]} for row in rows
    ]
    assert "purse.2.p99_ms" in {row["figure"] for row in rows}


def test_only_the_floor_server_has_the_noop_route(tmp_path: Path) -> None:
    """The floor's route exists only in the bench's floor server, never in purse serve's app."""
    settings = make_settings(f"sqlite:///{tmp_path / 'purse.db'}")
    body = {"to": "someone", "amount": {"value": "0.01", "currency": "CNY"}}
    assert TestClient(floor_app(settings)).post(NOOP_PATH, json=body).status_code == 201
    assert TestClient(create_app(settings)).post(NOOP_PATH, json=body).status_code == 404


def test_compare_says_which_way_each_figure_moved() -> None:
    old = {
        "benchmark": "http",
        "parameters": {"seconds_max": 10},
        "purse": {"16": {"ok_per_second": 40.0, "p99_ms": 1000.0, "statuses": {"201": 400}}},
        "ratios": {"16": 0.02},
    }
    new = {
        "benchmark": "http",
        "parameters": {"seconds_max": 20},
        "purse": {"16": {"ok_per_second": 80.0, "p99_ms": 1500.0, "statuses": {"201": 800}}},
        "ratios": {"16": 0.01},
    }
    rows = {row["figure"]: row for row in compare(old, new)}
    assert "parameters.seconds_max" not in rows  # how the run was set up is no figure
    assert rows["purse.16.ok_per_second"]["change_percent"] == 100.0
    assert rows["purse.16.ok_per_second"]["better"] is True
    assert rows["purse.16.p99_ms"]["change_percent"] == 50.0
    assert rows["purse.16.p99_ms"]["better"] is False
    assert rows["ratios.16"]["better"] is False
    assert rows["purse.16.statuses.201"]["better"] is None  # a count is neither


class _Answers(BaseHTTPRequestHandler):
    """A server for the load generator alone: 201 kept alive, 503 closing, or no answer."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/silent":
            # Far past the client's timeout (0.5 s), however loaded the machine: it must
            # count a timeout and go on.
            time.sleep(SILENT_SECONDS)
            self.close_connection = True
            return
        closing = self.path == "/closing"
        refusing = self.path == "/refusing"
        self.send_response(503 if closing or refusing else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        if refusing:
            self.send_header("Retry-After", "1")
        if closing:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's
        pass


@pytest.fixture
def answers() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.mark.parametrize(
    ("path", "statuses", "timeout_seconds"),
    [
        # A timeout that a loaded machine cannot reach where answers are expected, and a
        # short one where none comes.
        ("/fine", {"201": 6}, 30.0),
        ("/closing", {"503": 6}, 30.0),  # each answer closes its connection: the next opens anew
        ("/refusing", {"503": 6}, 30.0),  # a 503 that says when to come back
        ("/silent", {"timeout": 6}, 0.5),
    ],
)
def test_the_load_generator_counts_every_outcome(
    answers: str, path: str, statuses: dict[str, int], timeout_seconds: float
) -> None:
    spec = LevelSpec(
        url=answers,
        path=path,
        clients=2,
        sends_max=6,
        seconds_max=60,
        timeout_seconds=timeout_seconds,
        senders=(Sender(token="t", to="someone"),),  # noqa: S106 - not checked here
    )
    # In a thread of its own, as in the bench's own process: run_level starts an event loop,
    # and the browser tests' Playwright keeps one running in the main thread for the session.
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(run_level, spec).result(timeout=120)
    assert result["requests"] == 6
    assert result["statuses"] == statuses
    assert result["ok"] == statuses.get("201", 0)
    if path in ("/closing", "/refusing"):  # the first refusal is shown, to tell why
        assert result["first_failure"].startswith("503 ")
    else:
        assert result["first_failure"] is None
    # A refusal with Retry-After (1 s here) is honoured: each client waits before its next
    # request, except after the last. Two clients, three refusals each: two waits each.
    if path == "/refusing":
        assert result["seconds"] >= 1.9
    # The overload check: only a 503 with Retry-After, or success, keeps it ok.
    overload = result["overload"]
    assert overload["ok"] is (path in ("/fine", "/refusing"))
    assert overload["503_without_retry_after"] == (6 if path == "/closing" else 0)
    assert overload["timeouts"] == statuses.get("timeout", 0)


@pytest.mark.parametrize(
    "arguments",
    [["--clients", "0"], ["--clients", "1,x"], ["--clients", ""], ["--workers", "0"]],
)
def test_bench_http_refuses_bad_arguments_before_starting_anything(
    arguments: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "http.json"
    result = runner.invoke(app, ["bench", "http", *arguments, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert not out.exists()


def test_bench_memory_samples_the_server_under_load(tmp_path: Path) -> None:
    out = tmp_path / "bench" / "memory.json"
    result = runner.invoke(
        app,
        ["bench", "memory", "--clients", "2", "--seconds", "3", "--every", "0.5"]
        + ["--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["benchmark"] == "memory" and report["backend"] == "sqlite"
    assert report["load"]["ok"] > 0 and set(report["load"]["statuses"]) == {"201"}
    samples = report["samples"]
    assert len(samples) >= 3
    assert all(sample["rss_mb"] > 10 for sample in samples)  # a Python server, really read
    assert [s["seconds"] for s in samples] == sorted(s["seconds"] for s in samples)
    assert report["flat"] is None  # three seconds cannot tell the first minute from the rest
    assert out.with_suffix(".png").stat().st_size > 0


@pytest.mark.parametrize(
    ("rss", "growth", "flat"),
    [
        ([100, 140, 150, 150, 151], 0.0067, True),  # growth in the first minute is allowed
        ([100, 100, 100, 104, 108], 0.08, False),
        ([100, 100], None, None),
    ],
)
def test_memory_growth_counts_only_after_the_first_minute(
    rss: list[float], growth: float | None, flat: bool | None
) -> None:
    from purse.bench.http import memory_growth

    samples = [{"seconds": 30.0 * index, "rss_mb": value} for index, value in enumerate(rss)]
    assert memory_growth(samples) == {"growth_after_first_minute": growth, "flat": flat}


@pytest.mark.parametrize(
    "arguments",
    [["--clients", "0"], ["--seconds", "0"], ["--every", "-1"], ["--timeout", "x"]],
)
def test_bench_memory_refuses_bad_arguments_before_starting_anything(
    tmp_path: Path, arguments: list[str]
) -> None:
    out = tmp_path / "memory.json"
    result = runner.invoke(app, ["bench", "memory", *arguments, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_a_refusal_says_when_to_come_back_in_seconds_or_as_a_date() -> None:
    assert _seconds(b"2") == 2.0
    assert _seconds(b" 30 ") == 30.0
    assert _seconds(b"Wed, 21 Oct 2026 07:28:00 GMT") == 1.0  # a date: a second, no more
