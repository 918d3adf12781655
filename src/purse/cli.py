"""The ``purse`` command: serve, worker, db, ledger, bench, settings, version."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import warnings
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from purse import __version__
from purse.bench import commands as bench_commands
from purse.settings import (
    SecretKeyWarning,
    Settings,
    describe_settings,
    env_text,
    setting_variable,
    unknown_variable_warnings,
)

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

    from purse.db import Database

# SQLite's answers when the file cannot be used at all (a folder, no permission, not a DB).
_SQLITE_CANNOT_OPEN = ("SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_PERM", "SQLITE_READONLY")
_CAUSE_DEPTH_MAX = 16


class PurseGroup(TyperGroup):
    """The top-level command: reports an unreachable database in one line, for every command.

    A refused or failed connection surfaces deep inside SQLAlchemy, Alembic or the worker
    loop, as a traceback of hundreds of lines that hides the one fact an operator needs.
    Catching it here, around every subcommand, keeps the commands free of try/except.
    """

    def invoke(self, ctx: Any) -> Any:  # Typer's vendored click.Context has no public name
        try:
            return super().invoke(ctx)
        except Exception as error:
            failure = _connection_failure(error)
            if failure is None:
                raise
            console.print(f"[red]purse:[/red] {escape(_connection_message(failure))}")
            raise typer.Exit(1) from None


def _connection_failure(error: BaseException) -> DBAPIError | None:
    """The SQLAlchemy error behind ``error`` when it says the database could not be reached."""
    from sqlalchemy.exc import DBAPIError

    from purse.db import is_unavailable

    cause: BaseException | None = error
    for _ in range(_CAUSE_DEPTH_MAX):
        if cause is None:
            return None
        if isinstance(cause, DBAPIError):
            if isinstance(cause.orig, sqlite3.Error):
                name = getattr(cause.orig, "sqlite_errorname", "")
                return cause if name.startswith(_SQLITE_CANNOT_OPEN) else None
            return cause if is_unavailable(cause) else None
        # "raise ... from None" (a command that already reported the error) ends the walk.
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return None


def _connection_message(failure: DBAPIError) -> str:
    """One line: which database, the driver's reason, and what to check; never the password.

    The URL is read from the settings again: the error does not carry it, and the settings
    loaded a moment ago by the command are the same.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    lines = str(failure.orig).strip().splitlines() or ["no reason given"]
    reason = lines[0].rpartition(": ")[2].strip() or lines[0]
    try:
        url = make_url(Settings().database_url)
    except (ValidationError, ArgumentError):
        return f"cannot reach the database: {reason}. Check PURSE_DATABASE_URL."
    if url.password:
        reason = reason.replace(str(url.password), "***")
    if url.get_backend_name() == "sqlite":
        path = url.database or ":memory:"
        return (
            f"cannot open the SQLite database {path}: {reason}. Check that the path is a SQLite "
            "file (or not there yet) in a folder purse may write to, and PURSE_DATABASE_URL."
        )
    host = url.host or url.query.get("host")
    port = url.port or 5432
    if not host:
        where = f"on the default local socket (port {port})"
    elif str(host).startswith("/"):
        where = f"on the socket in {host} (port {port})"
    else:
        where = f"at {host}:{port}"
    return (
        f"cannot connect to the PostgreSQL database {url.database or '(default)'} {where} "
        f"as {url.username or 'the current user'}: {reason}. Check that the server is running "
        "and accepts connections there, and PURSE_DATABASE_URL."
    )


app = typer.Typer(
    cls=PurseGroup,
    help="purse: a self-hostable digital wallet.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (see docs/development.md).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts, for operators.", no_args_is_help=True)
fx_app = typer.Typer(help="Exchange rates for conversions.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(bench_app, name="bench")
bench_commands.register(bench_app)  # http, compare: beside their workloads
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")
app.add_typer(fx_app, name="fx")

console = Console(stderr=True, soft_wrap=True)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a readable message and exit code 2.

    Warns first about ``PURSE_*`` variables that are no setting: a misspelled one is
    otherwise ignored without a word, and may be why a setting has its default.
    """
    for warning in unknown_variable_warnings(os.environ):
        console.print(
            f"[yellow]warning:[/yellow] {escape(warning)} (purse settings lists them all)"
        )
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "settings"
            console.print(f"[red]invalid setting[/red] {where}: {item['msg']}")
        raise typer.Exit(2) from None


def open_database(settings: Settings) -> Database:
    """The database, connected once now so a wrong URL or a stopped server stops the command.

    Without it, ``purse worker`` would start and log a failing job every round.
    """
    from purse.db import Database

    database = Database(settings)
    with database.engine.connect():
        pass
    return database


def _from_setting(name: str) -> str:
    """The help's default for an option that falls back to a setting."""
    return f"{setting_variable(name)} or {Settings.model_fields[name].default}"


def _secret_key(settings: Settings) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SecretKeyWarning)
        settings.resolved_secret_key()
    for warning in caught:
        console.print(f"[yellow]warning:[/yellow] {warning.message}")


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def purse(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            show_default=False,
            help="Print purse's version and exit.",
        ),
    ] = False,
) -> None:
    """The options of purse itself, before any command (--version)."""


@app.command()
def version() -> None:
    """Print purse's version."""
    print(__version__)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on.", show_default=_from_setting("host"))
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on.", show_default=_from_setting("port"))
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="HTTP processes; above 1 needs PostgreSQL, and the jobs get a process.",
        ),
    ] = 1,
    jobs: Annotated[
        bool, typer.Option(help="Run the background jobs (else run `purse worker` beside it).")
    ] = True,
    demo: Annotated[
        bool, typer.Option(help="Add two demo users with money and history (once).")
    ] = False,
) -> None:
    """Run the API and the background jobs in one process (or in several on PostgreSQL)."""
    import uvicorn

    from purse import migrate
    from purse.app import create_app
    from purse.assembly import assemble
    from purse.logs import configure_logging
    from purse.server import server_config, settle_heap

    settings = load_settings(host=host, port=port)
    configure_logging(settings.log_level)
    _secret_key(settings)
    database = open_database(settings)
    if workers > 1 and database.is_sqlite:
        console.print(
            "[red]purse:[/red] --workers above 1 needs PostgreSQL: one SQLite file belongs "
            "to one process"
        )
        raise typer.Exit(2)
    purse = assemble(settings, database=database)
    if database.is_sqlite:
        migrate.upgrade(database)
    elif not migrate.is_current(database):
        console.print("[red]The database schema is not current.[/red] Run: purse db upgrade")
        raise typer.Exit(1)
    if demo:
        _seed_demo(purse)
    if workers > 1:
        purse.dispose()
        _serve_processes(settings, workers=workers, jobs=jobs)
        return
    application = create_app(settings, purse=purse, run_workers=jobs)
    console.print(
        f"purse {__version__} listening on http://{settings.host}:{settings.port} (docs at /docs)"
    )
    if demo:
        from purse import demo as demo_data
        from purse.demo import pages as demo_pages

        url = f"http://{settings.host}:{settings.port}"
        shop = demo_pages.mount(application, purse, base_url=url)
        console.print(
            f"[bold]Demo:[/bold] open {url}/ and sign in as [bold]wang_wei[/bold] "
            f"(or [bold]li_na[/bold]) with the password [bold]{demo_data.DEMO_PASSWORD}[/bold]\n"
            f"      codes sent by SMS and email appear at {url}/dev/mailbox"
            + (
                f"\n      demo coffee shop: {url}/demo/shop (its test key: {shop.key_secret})"
                if shop
                else ""
            )
        )
    server = uvicorn.Server(server_config(application, settings))
    settle_heap()
    server.run()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's exit code when it cannot start (the port is taken, say)


def _serve_processes(settings: Settings, *, workers: int, jobs: bool) -> None:
    """``purse serve --workers N``: N processes answer on one socket, and one runs the jobs.

    uvicorn's supervisor starts the HTTP processes, each building its app from the
    environment (``purse.app.app_of_a_server_process``), and starts a new one when one
    dies. The jobs run in a ``purse worker`` process beside them, stopped with them.
    """
    import subprocess

    from uvicorn.supervisors import Multiprocess

    from purse.server import server_config

    # The processes read their settings from the environment: give them this command's.
    os.environ[setting_variable("host")] = settings.host
    os.environ[setting_variable("port")] = str(settings.port)
    config = server_config("purse.app:app_of_a_server_process", settings)
    config.factory = True
    config.workers = workers
    job_process = (
        subprocess.Popen([sys.executable, "-m", "purse.cli", "worker"])  # noqa: S603 - our CLI
        if jobs
        else None
    )
    console.print(
        f"purse {__version__} listening on http://{settings.host}:{settings.port} with "
        f"{workers} processes{' and one for the jobs' if jobs else ''}"
    )
    try:
        socket = config.bind_socket()
        Multiprocess(config, sockets=[socket]).run()
    finally:
        if job_process is not None:
            job_process.terminate()
            job_process.wait(timeout=30)


def _seed_demo(purse: Any) -> None:
    from purse import demo as demo_data

    if purse.settings.env == "production":
        console.print("[red]--demo is refused when PURSE_ENV=production[/red]")
        raise typer.Exit(2)
    if demo_data.seed(purse):
        console.print("demo data added: wang_wei, li_na and lucky_coffee")


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Run every job once and exit.")] = False,
) -> None:
    """Run the background jobs (hold expiry, provider follow-up, simulator, ...) until stopped."""
    from purse.assembly import assemble
    from purse.logs import configure_logging
    from purse.workers.runner import JobRunner

    settings = load_settings()
    configure_logging(settings.log_level)
    database = open_database(settings)
    purse = assemble(settings, database=database)
    runner = JobRunner(database, purse.jobs())
    if once:
        print(json.dumps(runner.run_once()))
        database.dispose()
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.run_forever()
    database.dispose()


@app.command("settings")
def settings_list(
    as_json: Annotated[
        bool, typer.Option("--json", show_default="off", help="Print the settings as JSON.")
    ] = False,
) -> None:
    """List every PURSE_* setting: its value now, its default and what it does."""
    shown = describe_settings(load_settings())
    if as_json:
        listing = {
            item.variable: {
                "value": item.value,
                "default": item.default,
                "description": item.description,
            }
            for item in shown
        }
        print(json.dumps(listing, indent=2))
        return
    for item in shown:
        value = env_text(item.value)
        head = f"{item.variable}={value}" if value else f"{item.variable}: not set"
        default = env_text(item.default) or "not set"
        tail = "(default)" if item.value == item.default else f"(default: {default})"
        print(f"{head}  {tail}\n    {item.description}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the schema migrations."""
    from purse import migrate

    database = open_database(load_settings())
    migrate.upgrade(database, revision)
    console.print(f"database at revision {migrate.current_revision(database)}")
    database.dispose()


@ledger_app.command("verify")
def ledger_verify(
    as_json: Annotated[
        bool, typer.Option("--json", show_default="off", help="Print the report as JSON.")
    ] = False,
) -> None:
    """Recompute every balance from the transfers and check the invariants. Exit 1 if any fails."""
    from purse.assembly import assemble

    settings = load_settings()
    database = open_database(settings)
    purse = assemble(settings, database=database)
    report = database.run(purse.verify, write=False)
    database.dispose()
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        out = Console()
        out.print(
            f"accounts {report.accounts}, transfers {report.transfers}, "
            f"assets {report.assets}, pending holds {report.holds_pending}"
            + (
                f", waiting to be sealed into the chain {report.transfers_unsealed}"
                if report.transfers_unsealed
                else ""
            )
        )
        if report.ok:
            out.print("[green]ledger consistent[/green]")
        else:
            table = Table("check", "problem", title=f"{len(report.problems)} problems")
            for problem in report.problems:
                table.add_row(problem.check, problem.message)
            out.print(table)
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain. Exit 1 if an event was changed or removed."""
    from purse.audit.service import verify_audit

    database = open_database(load_settings())
    report = database.run(verify_audit, write=False)
    database.dispose()
    out = Console()
    out.print(f"audit events {report.events}")
    for problem in report.problems:
        out.print(f"[red]{problem}[/red]")
    if report.ok:
        out.print("[green]audit log intact[/green]")
    raise typer.Exit(0 if report.ok else 1)


@user_app.command("create")
def user_create(
    handle: Annotated[str, typer.Option(help="Unique handle, e.g. agent_li.")],
    display_name: Annotated[str, typer.Option(help="The name colleagues and users see.")],
    role: Annotated[
        str, typer.Option(help="user, merchant_member, agent, senior_agent or admin.")
    ] = "user",
    email: Annotated[
        str | None,
        typer.Option(help="Email address (verified by the operator).", show_default="none"),
    ] = None,
    phone: Annotated[
        str | None,
        typer.Option(help="Phone number in E.164 (verified by the operator).", show_default="none"),
    ] = None,
    locale: Annotated[str, typer.Option(help="en or zh-CN.")] = "zh-CN",
) -> None:
    """Create an account for staff or a test user; the password is asked at the prompt."""
    from purse.audit.service import Actor
    from purse.errors import PurseError
    from purse.identity.context import Identity
    from purse.identity.signup import create_verified_user

    database = open_database(load_settings())  # before the prompt: the password is typed twice
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    identity = Identity(database.settings)
    try:
        user_id = database.run(
            lambda session: create_verified_user(
                session,
                identity=identity,
                handle=handle,
                display_name=display_name,
                password=password,
                role=role,
                locale=locale,
                email=email,
                phone=phone,
                actor=Actor(kind="operator", id="cli"),
            )
        )
    except PurseError as error:
        console.print(f"[red]{error.code}[/red]: {error.message('en')}")
        raise typer.Exit(1) from None
    finally:
        database.dispose()
    console.print(f"created user {user_id} ({handle}, {role})")


@fx_app.command("set")
def fx_set(
    base: Annotated[str, typer.Argument(help="The currency priced, e.g. USD.")],
    quote: Annotated[str, typer.Argument(help="The currency it is priced in, e.g. CNY.")],
    rate: Annotated[str, typer.Argument(help="Units of QUOTE for one BASE, e.g. 7.21.")],
) -> None:
    """Set the mid rate of a pair; quotes add the spread (PURSE_FX_SPREAD_BPS)."""
    from purse.errors import PurseError
    from purse.wallet import conversion

    settings = load_settings()
    base, quote = base.upper(), quote.upper()
    offered = settings.wallet_assets
    if base not in offered or quote not in offered:
        console.print(
            f"[red]both currencies must be in PURSE_WALLET_ASSETS ({', '.join(offered)})[/red]"
        )
        raise typer.Exit(2)
    database = open_database(settings)
    try:
        row = database.run(
            lambda session: conversion.set_rate(
                session, base_asset=base, quote_asset=quote, rate=rate, updated_by="cli"
            )
        )
    except (ValueError, PurseError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    console.print(f"1 {row.base_asset} = {row.rate} {row.quote_asset}")


@fx_app.command("rates")
def fx_rates() -> None:
    """List the mid rates."""
    from sqlalchemy import select

    from purse.wallet.models import FxRate

    database = open_database(load_settings())
    rows = database.run(
        lambda session: list(session.scalars(select(FxRate).order_by(FxRate.base_asset))),
        write=False,
    )
    database.dispose()
    table = Table("base", "quote", "rate", "updated", "by", title="exchange rates")
    for row in rows:
        table.add_row(
            row.base_asset,
            row.quote_asset,
            row.rate,
            f"{row.updated_at:%Y-%m-%d %H:%M}",
            row.updated_by,
        )
    Console().print(table)


@bench_app.command("ledger")
def bench_ledger(
    transfers: Annotated[int, typer.Option(help="Transfers per measured mode.")] = 20_000,
    accounts: Annotated[int, typer.Option(help="Wallet accounts.")] = 1_000,
    concurrency: Annotated[int, typer.Option(help="Client threads.")] = 1,
    hot_share: Annotated[
        float, typer.Option(help="Share of transfers crediting one hot account.")
    ] = 0.0,
    batch_size: Annotated[
        int, typer.Option(help="Transfers per commit in the batched modes.")
    ] = 1_000,
    seconds_max: Annotated[float, typer.Option(help="Time limit per mode.")] = 60.0,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLite or PostgreSQL URL; a fresh database is made there.",
            show_default="SQLite in a temporary folder",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", show_default="off", help="Print the result as JSON.")
    ] = False,
    compare_with: bench_commands.CompareOption = None,
) -> None:
    """Ledger throughput against the raw-SQL floor, one-per-commit and batched."""
    from purse.bench.ledger import run_ledger_bench
    from purse.logs import configure_logging

    earlier = bench_commands.check_comparable(compare_with, "ledger")
    configure_logging("warning")  # logs to stderr, so --json output stays clean
    if not 0.0 <= hot_share <= 1.0:
        console.print("[red]--hot-share must be between 0 and 1[/red]")
        raise typer.Exit(2)
    result = run_ledger_bench(
        transfers=transfers,
        accounts=accounts,
        concurrency=concurrency,
        hot_share=hot_share,
        database_url=database_url,
        batch_size=batch_size,
        seconds_max=seconds_max,
    )
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    out = Console()
    table = Table(
        "mode", "transfers", "transfers/s", "p50 ms", "p99 ms", "errors", title="purse bench ledger"
    )
    for name, mode in result.get("modes", {}).items():
        table.add_row(
            name,
            str(mode.get("transfers")),
            f"{mode.get('transfers_per_second', 0):,.0f}",
            f"{mode.get('p50_ms', 0):.2f}",
            f"{mode.get('p99_ms', 0):.2f}",
            str(mode.get("errors")),
        )
    out.print(table)
    for name, value in result.get("ratios", {}).items():
        out.print(f"{name}: {value:.2f}")
    if earlier is not None:
        bench_commands.show_comparison(earlier, result)


@bench_app.command("history")
def bench_history(
    size: Annotated[int, typer.Option(help="Operations of the big user.")] = 100_000,
    small: Annotated[int, typer.Option(help="Operations of the small user.")] = 1_000,
    repeat: Annotated[int, typer.Option(help="Timed calls per query.")] = 20,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLite or PostgreSQL URL; a fresh database is made there.",
            show_default="SQLite in a temporary folder",
        ),
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="Also write the sends' notifications and verify the history.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", show_default="off", help="Print the result as JSON.")
    ] = False,
) -> None:
    """Activity pages and a monthly statement, small history against big."""
    from purse.bench.history import run_history_bench
    from purse.logs import configure_logging

    configure_logging("warning")
    result = run_history_bench(
        size=size, small=small, repeat=repeat, database_url=database_url, verify=verify
    )
    if as_json:
        print(json.dumps(result, indent=2))
        return
    sizes = result["sizes"]
    table = Table(
        "query",
        f"{sizes['small']:,} ops ms",
        f"{sizes['big']:,} ops ms",
        "ratio",
        title=f"purse bench history ({result['backend']})",
    )
    for name, row in result["queries"].items():
        table.add_row(name, f"{row['small_ms']:.2f}", f"{row['big_ms']:.2f}", f"{row['ratio']:.2f}")
    Console().print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
