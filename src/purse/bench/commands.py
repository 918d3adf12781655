"""``purse bench http``, ``memory`` and ``compare``, added to the ``bench`` group by ``purse.cli``.

They live here, beside the workloads, so the ``purse`` command's module stays a list of
short commands (and under the line cap). Heavy imports wait until a command runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)


def register(bench_app: typer.Typer) -> None:
    bench_app.command("http")(bench_http)
    bench_app.command("memory")(bench_memory)
    bench_app.command("compare")(bench_compare)
    bench_app.command("payment")(bench_payment)


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("a comma-separated list of client counts, e.g. 1,16,64") from None
    if not levels or any(level < 1 for level in levels):
        raise typer.BadParameter("client counts must be positive")
    return levels


def bench_payment(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Customers paying at once.")] = 4,
    cycles: Annotated[int, typer.Option(min=1, help="Most cycles per side.")] = 2_000,
    seconds: Annotated[float, typer.Option(help="Most seconds per side.")] = 20.0,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLite or local PostgreSQL URL; a fresh database is made there per side.",
            show_default="SQLite in a temporary folder",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the JSON goes.")] = Path(
        "results/bench/payment.json"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", show_default="off", help="Print the JSON instead of a table.")
    ] = False,
) -> None:
    """The merchant cycle (create, approve, capture, refund) against the same calls without
    the ledger, in one run."""
    from purse.bench.payment import run_payment_bench
    from purse.logs import configure_logging

    configure_logging("warning")
    report = run_payment_bench(
        threads=threads, cycles=cycles, seconds_max=seconds, database_url=database_url
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    if as_json:
        print(json.dumps(report, indent=2))  # noqa: T201 - the command's output
        return
    table = Table(
        "side",
        "cycles",
        "cycles/s",
        "p50 ms",
        "p99 ms",
        "errors",
        title=(f"purse bench payment ({report['backend']}, {threads} customers at once)"),
    )
    for side, found in report["sides"].items():
        table.add_row(
            side,
            str(found["cycles"]),
            str(found["cycles_per_second"]),
            str(found["p50_ms"]),
            str(found["p99_ms"]),
            str(found["errors"]),
        )
    console.print(table)
    console.print(f"purse / no ledger: [bold]{report['ratio']}[/bold]; written to {out}")


def bench_http(
    clients: Annotated[
        str, typer.Option(help="Concurrent clients at each level, comma-separated.")
    ] = "1,16,64",
    sends: Annotated[int, typer.Option(help="Most requests per level (and side).")] = 100_000,
    seconds: Annotated[float, typer.Option(help="Most seconds per level (and side).")] = 10.0,
    timeout: Annotated[float, typer.Option(help="A client's timeout per request, seconds.")] = 10.0,
    users: Annotated[
        int | None,
        typer.Option(help="Seeded users (each pays the next).", show_default="the most clients"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLite or local PostgreSQL URL; a fresh database is made there.",
            show_default="SQLite in a temporary folder",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Server processes, for purse serve --workers N and the floor (PostgreSQL).",
        ),
    ] = 1,
    out: Annotated[
        Path, typer.Option(help="Where the JSON goes; the PNG chart goes beside it.")
    ] = Path("results/bench/http.json"),
    as_json: Annotated[
        bool, typer.Option("--json", show_default="off", help="Print the JSON instead of a table.")
    ] = False,
    compare_with: CompareOption = None,
) -> None:
    """P2P sends through a real purse serve against a no-op POST on the same server."""
    from purse.bench.http import run_http_bench
    from purse.bench.report import write_http_chart
    from purse.logs import configure_logging

    earlier = check_comparable(compare_with, "http")
    configure_logging("warning")  # logs to stderr, so --json output stays clean
    report = run_http_bench(
        clients=_levels(clients),
        sends_max=sends,
        seconds_max=seconds,
        timeout_seconds=timeout,
        database_url=database_url,
        users=users,
        workers=workers,
    )
    _write(report, out, write_http_chart, _print_http if not as_json else None)
    if earlier is not None and not as_json:
        show_comparison(earlier, report)


def _print_http(report: dict[str, Any]) -> None:
    table = Table(
        "clients",
        "side",
        "2xx/s",
        "p50 ms",
        "p99 ms",
        "statuses",
        "server CPU ms/req",
        "ratio",
        title=f"purse bench http ({report['backend']}, "
        f"{report['parameters']['workers']} server processes)",
    )
    for level in report["purse"]:
        for side in ("floor", "purse"):
            row = report[side][level]
            statuses = ", ".join(f"{code}: {count}" for code, count in row["statuses"].items())
            cpu = row.get("server_cpu_ms_per_request")
            table.add_row(
                level,
                side,
                f"{row['ok_per_second']:,.1f}",
                f"{row['p50_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                statuses,
                "-" if cpu is None else f"{cpu:.2f}",
                f"{report['ratios'][level]:.3f}" if side == "purse" else "",
            )
    out = Console()
    out.print(table)
    for level in report["purse"]:
        overload = report["purse"][level].get("overload")
        if overload is not None and not overload["ok"]:
            problems = ", ".join(f"{k} {v}" for k, v in overload.items() if k != "ok" and v)
            out.print(f"{level} clients: overload answered badly ({problems})")
    checks = report["checks"]
    out.print(
        f"sends answered 2xx {checks['sends_ok']}, recorded by the ledger "
        f"{checks['sends_recorded']}; balances changed {checks['balances_changed']}; "
        f"ledger verify {'ok' if checks['verify_ok'] else 'FAILED'}"
    )


def bench_memory(
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients sending.")] = 16,
    seconds: Annotated[float, typer.Option(help="How long the sends go on.")] = 600.0,
    every: Annotated[float, typer.Option(help="Seconds between memory samples.")] = 10.0,
    timeout: Annotated[float, typer.Option(help="A client's timeout per request, seconds.")] = 10.0,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLite or local PostgreSQL URL; a fresh database is made there.",
            show_default="SQLite in a temporary folder",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Where the JSON goes; the PNG chart goes beside it.")
    ] = Path("results/bench/memory.json"),
    as_json: Annotated[
        bool,
        typer.Option("--json", show_default="off", help="Print the JSON instead of a summary."),
    ] = False,
) -> None:
    """The memory of purse serve across a long send load: flat after the first minute?"""
    if not (seconds > 0 and every > 0 and timeout > 0):
        raise typer.BadParameter("seconds, every and timeout must be positive")
    from purse.bench.http import run_memory_bench
    from purse.bench.report import write_memory_chart
    from purse.logs import configure_logging

    configure_logging("warning")
    report = run_memory_bench(
        clients=clients,
        seconds=seconds,
        sample_seconds=every,
        timeout_seconds=timeout,
        database_url=database_url,
    )
    _write(report, out, write_memory_chart, _print_memory if not as_json else None)


def _print_memory(report: dict[str, Any]) -> None:
    load, samples = report["load"], report["samples"]
    growth = report["growth_after_first_minute"]
    verdict = {True: "flat", False: "NOT flat", None: "too short to tell"}[report["flat"]]
    parameters = report["parameters"]
    Console().print(
        f"purse bench memory ({report['backend']}): {parameters['clients']} clients for "
        f"{parameters['seconds']:.0f} s, "
        f"{load['ok_per_second']:,.1f} sends/s, statuses {load['statuses']}\n"
        f"RSS {samples[0]['rss_mb'] if samples else '-'} MB at the start, "
        f"{max((s['rss_mb'] for s in samples), default='-')} MB at most; after the first "
        f"minute it grew {'-' if growth is None else f'{growth:.1%}'} "
        f"({verdict})"
    )


def _write(
    report: dict[str, Any],
    out: Path,
    write_chart: Callable[[dict[str, Any], Path], str | None],
    show: Callable[[dict[str, Any]], None] | None,
) -> None:
    """The JSON to ``out`` and the chart beside it; then ``show``, or the JSON when None."""
    from purse.bench.report import write_json

    chart = out.with_suffix(".png")
    reason = write_chart(report, chart)
    report["chart"] = str(chart) if reason is None else None
    write_json(report, out)
    if show is None:
        print(json.dumps(report, indent=2, default=str))
    else:
        show(report)
    console.print(f"wrote {out}" + (f" and {chart}" if reason is None else f"; {reason}"))


def bench_compare(
    old: Annotated[Path, typer.Argument(help="The earlier JSON (purse bench http or ledger).")],
    new: Annotated[Path, typer.Argument(help="The later JSON.")],
    as_json: Annotated[
        bool, typer.Option("--json", show_default="off", help="Print the comparison as JSON.")
    ] = False,
) -> None:
    """The change of every figure between two runs of the same workload."""
    show_comparison(_read_report(old), _read_report(new), as_json=as_json)


# The option of a workload command that compares its run with an earlier one.
CompareOption = Annotated[
    Path | None,
    typer.Option(
        "--compare",
        metavar="OLD.json",
        show_default="none",
        help="An earlier run's JSON: after this run's table, every figure's change.",
    ),
]


def _read_report(path: Path) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        console.print(f"[red]cannot read {escape(str(path))}:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    return report


def check_comparable(old: Path | None, benchmark: str) -> dict[str, Any] | None:
    """The earlier report of ``--compare``, read before a long run so a wrong file fails fast."""
    if old is None:
        return None
    report = _read_report(old)
    if report.get("benchmark") != benchmark:
        console.print(
            f"[red]not the same workload:[/red] {escape(str(old))} is "
            f"{escape(str(report.get('benchmark')))}, this run is {benchmark}"
        )
        raise typer.Exit(2)
    return report


def show_comparison(old: dict[str, Any], new: dict[str, Any], *, as_json: bool = False) -> None:
    from purse.bench.report import compare

    kinds = {old.get("benchmark"), new.get("benchmark")}
    if len(kinds) != 1:
        console.print(f"[red]not the same workload:[/red] {', '.join(map(str, kinds))}")
        raise typer.Exit(2)
    rows = compare(old, new)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("figure", "old", "new", "change", title=f"purse bench {kinds.pop()}: old → new")
    for row in rows:
        change = row["change_percent"]
        text = "-" if change is None else f"{change:+.1f}%"
        if row["better"] is not None:
            text = f"[green]{text}[/green]" if row["better"] else f"[red]{text}[/red]"
        table.add_row(row["figure"], _number(row["old"]), _number(row["new"]), text)
    Console().print(table)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
