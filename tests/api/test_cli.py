"""The purse command as an operator uses it, including a real `purse serve` process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from factories import TEST_SECRET, USER, make_settings, wallets
from purse import __version__, migrate
from purse.cli import app
from purse.db import Database
from purse.ledger import service as ledger
from purse.ledger.rules import TransferKind, TransferRequest
from purse.ledger.sealer import seal_transfers
from purse.settings import Settings

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("PURSE_DATABASE_URL", database_url)
    monkeypatch.setenv("PURSE_SECRET_KEY", TEST_SECRET)
    return database_url


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.stdout.strip() == "0.1.0"


def test_version_option() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == __version__


def _commands(command: Any, context: typer.Context) -> Iterator[tuple[str, Any, typer.Context]]:
    if hasattr(command, "list_commands"):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            yield from _commands(sub, typer.Context(sub, info_name=name, parent=context))
    else:
        yield context.command_path, command, context


def test_help_shows_the_default_of_every_option() -> None:
    root = typer.main.get_command(app)
    checked = 0
    for path, command, context in _commands(root, typer.Context(root, info_name="purse")):
        for param in command.get_params(context):
            if param.name in {"help", "show_version"}:
                continue
            record = param.get_help_record(context)
            assert record is not None, (path, param.name)
            assert "[default: " in record[1] or "[required]" in record[1], (path, record)
            checked += 1
    assert checked >= 20
    # Where the real default is a setting, the help says so, and the rendered help shows it.
    serve = runner.invoke(app, ["serve", "--help"])
    assert serve.exit_code == 0
    assert "[default: (PURSE_HOST or 127.0.0.1)]" in serve.stdout
    assert "[default: (PURSE_PORT or 8000)]" in serve.stdout
    assert "[default: (off)]" in runner.invoke(app, ["ledger", "verify", "--help"]).stdout
    assert "[default: (none)]" in runner.invoke(app, ["user", "create", "--help"]).stdout


def test_ledger_verify_exit_codes(env: str) -> None:
    database = Database(make_settings(env))
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.posted,
                debit_account_id=alice,
                credit_account_id=bob,
                asset="CNY",
                amount_minor=5,
                reason_code="p2p",
            ),
            initiator=USER,
        )
    )
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "ledger consistent" in result.stdout
    report = json.loads(runner.invoke(app, ["ledger", "verify", "--json"]).stdout)
    assert report["ok"] is True and report["transfers"] == 3 and report["accounts"] == 3

    database.run(seal_transfers)  # what the ledger's job does on PostgreSQL
    database.run(
        lambda s: s.execute(text("UPDATE ledger_transfers SET amount_minor = 6 WHERE id = 3"))
    )
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1
    assert "hash_chain" in result.stdout and "balance_replay" in result.stdout
    result = runner.invoke(app, ["ledger", "verify", "--json"])
    assert result.exit_code == 1
    assert {p["check"] for p in json.loads(result.stdout)["problems"]} == {
        "hash_chain",
        "balance_replay",
    }
    # Put it back so the after-test ledger check of this database passes too.
    database.run(
        lambda s: s.execute(text("UPDATE ledger_transfers SET amount_minor = 5 WHERE id = 3"))
    )
    database.dispose()


def test_worker_once_runs_every_job(env: str) -> None:
    result = runner.invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "seal_chain": 0,
        "expire_holds": 0,
        "purge_idempotency_keys": 0,
        "write_month_balances": 0,
        "simulator_settle": 0,
        "funding_follow_up": 0,
        "expire_money_requests": 0,
        "build_statements": 0,
        "expire_unapproved_payments": 0,
        "expire_payment_authorizations": 0,
        "deliver_webhooks": 0,
        "relay_outbox": 0,
    }


def test_db_upgrade_on_a_new_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURSE_DATABASE_URL", f"sqlite:///{tmp_path}/new.db")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert str(migrate.head_revision()) in result.output
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0


def test_bad_settings_are_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURSE_ENV", "production")
    monkeypatch.delenv("PURSE_SECRET_KEY", raising=False)
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 2
    assert "PURSE_SECRET_KEY" in result.output


@pytest.mark.parametrize("url", ["", "purse.db", "mysql://db/purse", "postgres:/db"])
def test_a_database_url_of_no_known_kind_is_one_line(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("PURSE_DATABASE_URL", url)
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "invalid setting database_url: Value error, expected sqlite:///path/to/file.db or "
        "postgresql://user:pass@host:port/db"
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_healthz_and_docs_on_the_embedded_default(tmp_path: Path) -> None:
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PURSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "purse.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, (
                    process.stdout.read().decode() if process.stdout else ""
                )
                assert time.monotonic() < deadline, "purse serve did not start in 30 s"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["status"] == "ready"
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert (tmp_path / "purse.db").exists()
    assert (tmp_path / "purse.db.secret").exists()
    assert "generated one and stored it" in output
    assert TEST_SECRET not in output


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines (Linux's /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended while we looked
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def test_serve_with_several_processes_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """``--workers 2``: two HTTP processes on one port, and one process for the jobs."""
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PURSE_")}
    environment |= {"PURSE_DATABASE_URL": postgres_url, "PURSE_SECRET_KEY": TEST_SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "purse.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            children = _children(process.pid)
            http = [line for line in children.values() if "spawn_main" in line]
            jobs = [line for line in children.values() if "purse.cli worker" in line]
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200 and len(http) == 2 and len(jobs) == 1:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, f"not started in 60 s: {children}"
            time.sleep(0.2)
        answers = [
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code for _ in range(20)
        ]
        assert answers == [200] * 20
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    ours = {pid for pid, line in children.items() if "spawn_main" in line or "purse.cli" in line}
    left = {pid: children[pid] for pid in ours if Path(f"/proc/{pid}").exists()}
    assert left == {}, f"still running after purse serve stopped: {left}"
    assert "with 2 processes and one for the jobs" in output


def test_several_processes_need_postgresql(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURSE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PURSE_SECRET_KEY", TEST_SECRET)
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers above 1 needs PostgreSQL" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["ledger", "verify"],
        ["db", "upgrade"],
        ["audit", "verify"],
        ["worker", "--once"],
        ["serve"],
        ["fx", "rates"],
        ["fx", "set", "USD", "CNY", "7.2"],
        ["user", "create", "--handle", "agent_li", "--display-name", "Li Na"],
    ],
)
def test_an_unreachable_database_is_one_line_naming_it(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()  # bound a moment ago and closed: nothing listens there
    monkeypatch.setenv("PURSE_DATABASE_URL", f"postgresql://purse:hunter2-pw@127.0.0.1:{port}/x")
    monkeypatch.setenv("PURSE_SECRET_KEY", TEST_SECRET)
    result = runner.invoke(app, command, input="kettle-orbit-violet-31\n" * 2)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"PostgreSQL database x at 127.0.0.1:{port}" in lines[0]
    assert "Connection refused" in lines[0] and "PURSE_DATABASE_URL" in lines[0]
    assert "hunter2" not in result.output


def test_an_unreachable_database_ends_the_process_with_one_line(tmp_path: Path) -> None:
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PURSE_")}
    environment["PURSE_DATABASE_URL"] = f"postgresql://purse:hunter2-pw@127.0.0.1:{port}/x"
    done = subprocess.run(
        [sys.executable, "-m", "purse.cli", "db", "upgrade"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"at 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr


def test_a_refused_login_and_an_unusable_sqlite_file_are_one_line_too(
    postgres_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_user = postgres_admin_url.replace("postgres@", "nobody:hunter2-pw@", 1)
    assert wrong_user != postgres_admin_url
    monkeypatch.setenv("PURSE_DATABASE_URL", wrong_user)
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'role "nobody" does not exist' in result.stderr and "hunter2" not in result.stderr
    monkeypatch.setenv("PURSE_DATABASE_URL", f"sqlite:///{tmp_path}")  # a folder, not a file
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"purse: cannot open the SQLite database {tmp_path}: unable to open database file. "
        "Check that the path is a SQLite file (or not there yet) in a folder purse may write "
        "to, and PURSE_DATABASE_URL."
    ]


def _clear_purse_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.upper().startswith("PURSE_"):
            monkeypatch.delenv(name)


def test_settings_lists_every_setting_with_secrets_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    _clear_purse_variables(monkeypatch)
    secrets = {
        "PURSE_SECRET_KEY": "secret-key-value-" + "s" * 32,
        "PURSE_SMTP_PASSWORD": "smtp-password-value",
        "PURSE_ENCRYPTION_KEYS": "k1:" + "QUJD" * 11,
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PURSE_DATABASE_URL", "postgresql://purse:db-password-value@db:5433/p")
    monkeypatch.setenv("PURSE_PORT", "9123")
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    as_json = runner.invoke(app, ["settings", "--json"])
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.stdout)

    for name, field in Settings.model_fields.items():
        variable = "PURSE_" + name.upper()
        assert field.description, f"{name} needs a Field(description=...)"
        assert f"\n{variable}" in "\n" + result.stdout, variable
        assert f"    {field.description}\n" in result.stdout, variable
        assert listed[variable]["description"] == field.description
    assert len(listed) == len(Settings.model_fields)

    assert "PURSE_PORT=9123  (default: 8000)" in result.stdout
    assert "PURSE_TIMEZONE=UTC  (default)" in result.stdout
    assert "PURSE_DATABASE_URL=postgresql://purse:***@db:5433/p" in result.stdout
    assert listed["PURSE_PORT"] == {
        "value": 9123,
        "default": 8000,
        "description": Settings.model_fields["port"].description,
    }
    for name in secrets:
        assert f"{name}=***  (default: not set)" in result.stdout
        assert listed[name]["value"] == "***"
    for shown in (result.output, as_json.output):
        for value in [*secrets.values(), "db-password-value", "QUJD"]:
            assert value not in shown


def test_unknown_purse_variables_are_warned_about_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _clear_purse_variables(monkeypatch)
    (tmp_path / ".env").write_text("PURSE_PROT=9000\n", encoding="utf-8")
    monkeypatch.setenv("PURSE_DATABSE_URL", "sqlite:///elsewhere.db")
    for name in ("PURSE_TEST_POSTGRES_URL", "PURSE_RELIABILITY_SIZE", "PURSE_MODEL_STEPS"):
        monkeypatch.setenv(name, "1")
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: PURSE_DATABSE_URL is not a purse setting and is ignored; did you mean "
        "PURSE_DATABASE_URL? (purse settings lists them all)",
        "warning: PURSE_PROT in .env is not a purse setting and is ignored; did you mean "
        "PURSE_PORT? (purse settings lists them all)",
    ]


def test_user_create_and_audit_verify(env: str) -> None:
    created = runner.invoke(
        app,
        [
            "user",
            "create",
            "--handle",
            "agent_li",
            "--display-name",
            "Li Na",
            "--role",
            "agent",
            "--email",
            "li.na@example.com",
        ],
        input="kettle-orbit-violet-31\nkettle-orbit-violet-31\n",
    )
    assert created.exit_code == 0, created.output
    assert "agent_li, agent" in created.output
    bad_role = runner.invoke(
        app,
        [
            "user",
            "create",
            "--handle",
            "boss",
            "--display-name",
            "Boss",
            "--role",
            "emperor",
            "--email",
            "boss@example.com",
        ],
        input="kettle-orbit-violet-31\nkettle-orbit-violet-31\n",
    )
    assert bad_role.exit_code == 1 and "role_invalid" in bad_role.output
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "audit log intact" in verified.stdout
    database = Database(make_settings(env))
    database.run(
        lambda s: s.execute(text("UPDATE audit_events SET actor_id = 'someone' WHERE id = 1"))
    )
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "changed after it was written" in broken.stdout
    database.dispose()


def test_fx_rates_are_set_and_listed(env: str) -> None:
    done = runner.invoke(app, ["fx", "set", "usd", "CNY", "7.2100"])
    assert done.exit_code == 0, done.output
    assert "1 USD = 7.21 CNY" in done.output
    listed = runner.invoke(app, ["fx", "rates"])
    assert listed.exit_code == 0 and "7.21" in listed.stdout and "cli" in listed.stdout
    for arguments in (["usd", "CNY", "-1"], ["usd", "CNY", "abc"], ["usd", "GBP", "9"]):
        refused = runner.invoke(app, ["fx", "set", *arguments])
        assert refused.exit_code == 2, arguments


def test_serve_demo_gives_a_newcomer_a_wallet_to_try(tmp_path: Path) -> None:
    from purse.demo import DEMO_PASSWORD

    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PURSE_")}
    environment["PURSE_PASSWORD_HASH_MEMORY_COST_KIB"] = "8192"  # quick, like the rest of the suite
    command = [sys.executable, "-m", "purse.cli", "serve", "--demo", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, (
                    process.stdout.read().decode() if process.stdout else ""
                )
                assert time.monotonic() < deadline, "purse serve --demo did not start in 60 s"
                time.sleep(0.2)
        token = httpx.post(
            f"{base}/v1/auth/token", json={"identifier": "wang_wei", "password": DEMO_PASSWORD}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        balances = {
            b["currency"]: b for b in httpx.get(f"{base}/v1/wallet/balances", headers=auth).json()
        }
        assert set(balances) == {"CNY", "USD"} and balances["CNY"]["held"]["value"] == "300.00"
        activity = httpx.get(f"{base}/v1/wallet/activity?limit=100", headers=auth).json()["items"]
        kinds = {item["kind"] for item in activity}
        assert {"top_up", "send", "convert", "withdrawal"} <= kinds
        assert any(item["status"] == "pending" for item in activity)
        asked = httpx.get(f"{base}/v1/wallet/requests", headers=auth).json()
        assert [r["status"] for r in asked] == ["open"]
        assert len(httpx.get(f"{base}/v1/wallet/funding-sources", headers=auth).json()) == 3
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert DEMO_PASSWORD in output and "wang_wei" in output
    again = subprocess.run(
        [sys.executable, "-m", "purse.cli", "ledger", "verify"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stdout + again.stderr
