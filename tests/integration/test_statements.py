"""Monthly statements on SQLite and PostgreSQL: what they say, how they render, how they are built.

The wallet runs in Asia/Shanghai (UTC+8), so months are local months, not UTC ones.
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from factories import SYSTEM, close_months, make_settings
from purse.assembly import assemble
from purse.db import Database
from purse.errors import PurseError
from purse.identity.principal import Principal
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.models import Transfer
from purse.ledger.rules import TransferKind, TransferRequest
from purse.ledger.verify import verify_ledger
from purse.models import utc_now
from purse.operations.models import Operation
from purse.wallet import banking, conversion, service
from purse.wallet.context import Wallet
from purse.wallet.models import Statement
from purse.wallet.statements import (
    StatementData,
    build_statements,
    render_csv,
    render_pdf,
    request_statement,
    statement_data,
    statement_file,
    statement_for,
)
from wallet_support import add_card, balance, make_user, operation, top_up

TIMEZONE = "Asia/Shanghai"
DECLINING_CARD = "4000000000000002"  # the bank refuses at once: the hold is voided


@pytest.fixture
def wallet(database_url: str) -> Iterator[Wallet]:
    database = Database(make_settings(database_url, simulator_settle_seconds=0, timezone=TIMEZONE))
    yield assemble(database.settings, database=database).wallet
    report = database.run(lambda s: verify_ledger(s, hold_expiry_grace_seconds=10**9), write=False)
    assert report.ok, report.problems
    database.dispose()


def month_of(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(TIMEZONE)).strftime("%Y-%m")


def next_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


@dataclass(frozen=True)
class History:
    wang: Principal
    zhang: Principal
    this_month: str
    earlier_month: str
    earlier: str  # zhang paid wang, dated in an earlier month
    top_up: str
    sent: str  # wang -> zhang
    received: str  # zhang -> wang, with a note that looks like a spreadsheet formula
    converted: str
    withdrawn: str
    failed_withdrawal: str


def send(
    wallet: Wallet, caller: Principal, *, to: str, amount_minor: int, note: str, **more: object
) -> str:
    result = wallet.database.run(
        lambda s: service.send(
            s,
            wallet=wallet,
            principal=caller,
            to=to,
            asset="CNY",
            amount_minor=amount_minor,
            note=note,
            idempotency_key=str(uuid.uuid4()),
            **more,  # type: ignore[arg-type]
        )
    )
    return result.operation.reference


def withdraw(wallet: Wallet, caller: Principal, *, card: str, amount_minor: int) -> Operation:
    source = add_card(wallet, caller, card)
    started = wallet.database.run(
        lambda s: banking.start_withdrawal(
            s,
            wallet=wallet,
            principal=caller,
            funding_source_id=source,
            asset="CNY",
            amount_minor=amount_minor,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    banking.submit_to_provider(wallet, operation_id=started.operation.id)
    wallet.simulator.settle_due()
    return operation(wallet.database, started.operation.id)


def make_history(wallet: Wallet) -> History:
    database = wallet.database
    wang = make_user(database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    zhang = make_user(database, wallet.identity, handle="zhang_li", display_name="Zhang Li")
    top_up(wallet, zhang, amount_minor=50_000)
    # The ledger records the time it is given, so a transfer can be dated in an earlier month.
    earlier_at = utc_now() - timedelta(days=35)
    earlier = send(wallet, zhang, to="wang_wei", amount_minor=5_000, note="rent", now=earlier_at)
    topped_up = top_up(wallet, wang, amount_minor=100_000)
    sent = send(wallet, wang, to="zhang_li", amount_minor=2_550, note="lunch")
    received = send(wallet, zhang, to="wang_wei", amount_minor=1_000, note='=HYPERLINK("x")')
    database.run(
        lambda s: conversion.set_rate(
            s, base_asset="USD", quote_asset="CNY", rate="7.2", updated_by="tests"
        )
    )
    quoted = database.run(
        lambda s: conversion.quote(
            s, wallet=wallet, principal=wang, from_asset="CNY", to_asset="USD", amount_minor=72_000
        )
    )
    converted = database.run(
        lambda s: conversion.convert(
            s, wallet=wallet, principal=wang, quote_id=quoted.id, idempotency_key="fx-1"
        )
    )
    withdrawn = withdraw(wallet, wang, card="4242424242424242", amount_minor=3_000)
    failed = withdraw(wallet, wang, card=DECLINING_CARD, amount_minor=12_000)
    assert (withdrawn.status, failed.status) == ("completed", "failed")
    return History(
        wang=wang,
        zhang=zhang,
        this_month=month_of(utc_now()),
        earlier_month=month_of(earlier_at),
        earlier=earlier,
        top_up=topped_up.reference,
        sent=sent,
        received=received,
        converted=converted.operation.reference,
        withdrawn=withdrawn.reference,
        failed_withdrawal=failed.reference,
    )


def read(wallet: Wallet, caller: Principal, month: str) -> StatementData:
    return wallet.database.run(
        lambda s: statement_data(s, wallet=wallet, user_id=caller.wallet_user_id, month=month),
        write=False,
    )


def test_a_statement_reconciles_to_the_ledger_month_by_month(wallet: Wallet) -> None:
    history = make_history(wallet)
    data = read(wallet, history.wang, history.this_month)
    assert (data.handle, data.month, data.timezone) == ("wang_wei", history.this_month, TIMEZONE)
    cny, usd = data.sections
    assert [(line.reference, line.amount_minor) for line in cny.lines] == [
        (history.top_up, 100_000),
        (history.sent, -2_550),
        (history.received, 1_000),
        (history.converted, -72_000),
        (history.withdrawn, -3_000),  # the hold's post_pending; the hold itself is no line
    ]
    assert history.failed_withdrawal not in {line.reference for line in cny.lines}
    assert history.earlier not in {line.reference for line in cny.lines}
    assert cny.opening_minor == 5_000  # the earlier month's payment
    assert [line.balance_minor for line in cny.lines] == [105_000, 102_450, 103_450, 31_450, 28_450]
    assert (cny.in_minor, cny.out_minor, cny.closing_minor) == (101_000, 77_550, 28_450)
    assert cny.closing_minor == balance(wallet.database, history.wang, "CNY").balance_minor  # type: ignore[union-attr]
    rate = operation_rate(wallet, history.converted)
    assert [line.description("en") for line in cny.lines] == [
        "Top-up",
        "Sent to Z*** L*** (@zhang_li)",
        "Received from Z*** L*** (@zhang_li)",
        f"Converted CNY to USD at {rate}",
        "Withdrawal",
    ]
    assert cny.lines[1].description("zh-CN") == "转账给 Z*** L***（@zhang_li）"
    assert [line.note for line in cny.lines[:3]] == [None, "lunch", '=HYPERLINK("x")']
    assert all(
        line.at.utcoffset() == timedelta(hours=8) and month_of(line.at) == history.this_month
        for line in cny.lines
    )

    assert (usd.asset.code, usd.opening_minor, usd.closing_minor) == ("USD", 0, 9_950)
    assert [(line.reference, line.amount_minor) for line in usd.lines] == [
        (history.converted, 9_950)
    ]
    assert usd.closing_minor == balance(wallet.database, history.wang, "USD").balance_minor  # type: ignore[union-attr]

    earlier = read(wallet, history.wang, history.earlier_month)
    assert [(s.asset.code, s.opening_minor, s.closing_minor) for s in earlier.sections] == [
        ("CNY", 0, 5_000),
        ("USD", 0, 0),
    ]
    assert [line.reference for line in earlier.sections[0].lines] == [history.earlier]
    assert earlier.sections[1].lines == ()

    # Months without activity: before anything happened, and after (the balance carries over).
    for month, expected in [("2001-01", (0, 0)), (next_month(history.this_month), (28_450, 9_950))]:
        quiet = read(wallet, history.wang, month)
        assert [(s.opening_minor, s.closing_minor) for s in quiet.sections] == [
            (expected[0], expected[0]),
            (expected[1], expected[1]),
        ]
        assert quiet.line_count == 0


def operation_rate(wallet: Wallet, reference: str) -> str:
    return wallet.database.run(
        lambda s: str(
            s.scalars(select(Operation.rate).where(Operation.reference == reference)).one()
        ),
        write=False,
    )


def test_csv_opens_in_a_spreadsheet_with_every_line(wallet: Wallet) -> None:
    history = make_history(wallet)
    data = read(wallet, history.wang, history.this_month)
    content = render_csv(data, locale="en")
    assert content.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["Currency", "Date", "Reference", "Description", "Note", "Amount", "Balance"]
    assert rows[1] == ["CNY", "", "", "Opening balance", "", "", "50.00"]
    lines = [row for row in rows[1:] if row[2]]
    assert [(row[0], row[2], row[5], row[6]) for row in lines] == [
        ("CNY", history.top_up, "1000.00", "1050.00"),
        ("CNY", history.sent, "-25.50", "1024.50"),
        ("CNY", history.received, "10.00", "1034.50"),
        ("CNY", history.converted, "-720.00", "314.50"),
        ("CNY", history.withdrawn, "-30.00", "284.50"),
        ("USD", history.converted, "99.50", "99.50"),
    ]
    assert lines[1][3:5] == ["Sent to Z*** L*** (@zhang_li)", "lunch"]
    # Another person's note is text in a spreadsheet, never a formula.
    assert lines[2][4] == '\'=HYPERLINK("x")'
    assert lines[0][1].startswith(history.this_month + "-")
    assert ["CNY", "", "", "Total in", "", "1010.00", ""] in rows
    assert ["CNY", "", "", "Total out", "", "-775.50", ""] in rows
    assert ["CNY", "", "", "Closing balance", "", "", "284.50"] in rows
    assert ["USD", "", "", "Closing balance", "", "", "99.50"] in rows
    assert history.failed_withdrawal not in content.decode("utf-8-sig")

    chinese = list(csv.reader(io.StringIO(render_csv(data, locale="zh-CN").decode("utf-8-sig"))))
    assert chinese[0] == ["币种", "日期", "参考号", "摘要", "备注", "金额", "余额"]
    assert chinese[1][3] == "期初余额"
    assert [row[3] for row in chinese if row[2] == history.sent] == [
        "转账给 Z*** L***（@zhang_li）"
    ]


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_pdf_lists_every_reference_in_english_and_chinese(wallet: Wallet) -> None:
    history = make_history(wallet)
    data = read(wallet, history.wang, history.this_month)
    references = [history.top_up, history.sent, history.received, history.converted]
    references.append(history.withdrawn)

    content = render_pdf(data, locale="en")
    assert content.startswith(b"%PDF")
    text = pdf_text(content)
    assert f"Statement {history.this_month}" in text and "@wang_wei" in text
    assert all(reference in text for reference in references)
    assert history.failed_withdrawal not in text and history.earlier not in text
    assert "CN¥284.50" in text and "$99.50" in text  # the closing balances
    assert render_pdf(data, locale="en") == content  # no clock or random id in the file

    chinese = pdf_text(render_pdf(data, locale="zh-CN"))
    assert "对账单" in chinese and "期末余额" in chinese
    assert all(reference in chinese for reference in references)


def statements(wallet: Wallet) -> list[Statement]:
    return wallet.database.run(
        lambda s: list(s.scalars(select(Statement).order_by(Statement.id))), write=False
    )


def ask(
    wallet: Wallet,
    caller: Principal,
    month: str,
    format: str = "csv",
    *,
    locale: str = "en",
    now: datetime | None = None,
) -> Statement:
    return wallet.database.run(
        lambda s: request_statement(
            s, wallet=wallet, principal=caller, month=month, format=format, locale=locale, now=now
        )
    )


def test_the_worker_builds_queued_statements_and_reports_progress(wallet: Wallet) -> None:
    history = make_history(wallet)
    as_csv = ask(wallet, history.wang, history.this_month, "csv")
    as_pdf = ask(wallet, history.wang, history.this_month, "pdf", locale="zh-CN")
    assert ask(wallet, history.wang, history.this_month, "csv").id == as_csv.id  # already queued
    assert [(s.status, s.locale) for s in statements(wallet)] == [
        ("queued", "en"),
        ("queued", "zh-CN"),
    ]
    with pytest.raises(PurseError) as waiting:
        wallet.database.run(
            lambda s: statement_file(s, principal=history.wang, statement_id=as_csv.id)
        )
    assert waiting.value.code == "statement_not_ready"

    progress: list[str] = []

    @event.listens_for(wallet.database.engine, "before_cursor_execute")
    def watch(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE wallet_statements SET lines_done"):
            progress.append(statement)

    assert build_statements(wallet, progress_every_lines=2) == 2
    event.remove(wallet.database.engine, "before_cursor_execute", watch)
    # Six lines each: progress written after lines 2 and 4; line 6 is written with the file.
    assert len(progress) == 4
    built = statements(wallet)
    assert [(s.status, s.lines_total, s.lines_done) for s in built] == [("ready", 6, 6)] * 2
    assert all(s.finished_at is not None for s in built)
    csv_bytes = wallet.database.run(
        lambda s: statement_file(s, principal=history.wang, statement_id=as_csv.id)
    )
    assert history.sent in csv_bytes.decode("utf-8-sig")
    pdf_bytes = wallet.database.run(
        lambda s: statement_file(s, principal=history.wang, statement_id=as_pdf.id)
    )
    assert "对账单" in pdf_text(pdf_bytes)
    assert build_statements(wallet) == 0  # nothing left


def test_a_statement_that_cannot_be_built_fails_and_a_stale_one_is_rebuilt(
    wallet: Wallet,
) -> None:
    wang = make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    now = utc_now()

    def insert(session: Session) -> list[int]:
        rows = [
            # Written past the checks: a month the builder cannot read.
            Statement(month="2026-13", status="queued", created_at=now),
            # Its worker died two hours ago; it is built again.
            Statement(month="2026-01", status="running", created_at=now - timedelta(hours=2)),
            # Its worker is still at it.
            Statement(month="2026-02", status="running", created_at=now),
        ]
        for row in rows:
            row.user_id, row.format, row.locale = wang.wallet_user_id, "csv", "en"
            row.lines_total = row.lines_done = 0
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]

    wallet.database.run(insert)
    with capture_logs() as logs:
        assert build_statements(wallet, now=now) == 1
    assert [(s.month, s.status) for s in statements(wallet)] == [
        ("2026-13", "failed"),
        ("2026-01", "ready"),
        ("2026-02", "running"),
    ]
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
        "statement.failed"
    ]
    failed = statements(wallet)[0]
    with pytest.raises(PurseError) as no_file:
        wallet.database.run(lambda s: statement_file(s, principal=wang, statement_id=failed.id))
    assert no_file.value.code == "statement_failed"


def test_postgres_workers_skip_statements_another_worker_claimed(wallet: Wallet) -> None:
    if wallet.database.is_sqlite:
        pytest.skip("SQLite has one writer at a time; there is nothing to skip")
    wang = make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    month = month_of(utc_now())
    first = ask(wallet, wang, month, "csv")
    second = ask(wallet, wang, month, "pdf")
    built: list[int] = []
    with wallet.database.transaction() as other_worker:
        other_worker.scalars(
            select(Statement).where(Statement.id == first.id).with_for_update()
        ).one()
        # In a thread, so that a worker waiting on the lock fails the test instead of hanging it.
        worker = threading.Thread(target=lambda: built.append(build_statements(wallet)))
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "the worker waited for a statement another worker holds"
    assert built == [1]
    assert [(s.id, s.status) for s in statements(wallet)] == [
        (first.id, "queued"),
        (second.id, "ready"),
    ]


def test_statement_requests_that_are_refused(wallet: Wallet) -> None:
    wang = make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    # 20:00 UTC on 31 May is already 1 June in Shanghai: June may be asked for, July not.
    now = datetime(2026, 5, 31, 20, 0, tzinfo=UTC)
    for month, format, code in [
        ("2026-13", "csv", "statement_month_invalid"),
        ("2026-00", "csv", "statement_month_invalid"),
        ("2026-5", "csv", "statement_month_invalid"),
        ("26-05", "csv", "statement_month_invalid"),
        ("２０２６-05", "csv", "statement_month_invalid"),  # full-width digits
        ("1999-12", "csv", "statement_month_invalid"),
        ("2026-07", "csv", "statement_month_invalid"),  # the future
        ("2026-05", "xlsx", "validation_failed"),
    ]:
        with pytest.raises(PurseError) as refused:
            ask(wallet, wang, month, format, now=now)
        assert (month, refused.value.code) == (month, code)
    assert statements(wallet) == []
    for allowed in ("2000-01", "2026-06"):
        assert ask(wallet, wang, allowed, "pdf", now=now).month == allowed
    assert [s.month for s in statements(wallet)] == ["2000-01", "2026-06"]


def test_another_users_statement_is_not_found(wallet: Wallet) -> None:
    wang = make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    zhang = make_user(wallet.database, wallet.identity, handle="zhang_li", display_name="Zhang Li")
    mine = ask(wallet, wang, month_of(utc_now()))
    found = wallet.database.run(lambda s: statement_for(s, principal=wang, statement_id=mine.id))
    assert (found.id, found.status) == (mine.id, "queued")
    for reader in (
        lambda s: statement_for(s, principal=zhang, statement_id=mine.id),
        lambda s: statement_file(s, principal=zhang, statement_id=mine.id),
        lambda s: statement_for(s, principal=wang, statement_id=mine.id + 1),
    ):
        with pytest.raises(PurseError) as missing:
            wallet.database.run(reader)
        assert missing.value.code == "statement_not_found"


def test_statements_from_month_balances_say_what_counting_back_says(wallet: Wallet) -> None:
    """Wang moves money in three earlier months (sends, a hold posted in part, a hold
    released, a reversal) and this one; every month's statement reads the same before
    the ledger's month job ran (counted back from today's balance) and after (from the
    month balance at its start)."""
    database = wallet.database
    wang = make_user(database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    zhang = make_user(database, wallet.identity, handle="zhang_li", display_name="Zhang Li")
    top_up(wallet, zhang, amount_minor=50_000)
    zone = ZoneInfo(TIMEZONE)
    local_now = utc_now().astimezone(zone)
    this_month_start = datetime(local_now.year, local_now.month, 1, tzinfo=zone)
    # 70, 40 and 10 days before this month began: three different months.
    m3, m2, m1 = (
        (this_month_start - timedelta(days=days)).astimezone(UTC) for days in (70, 40, 10)
    )
    first = send(wallet, zhang, to="wang_wei", amount_minor=9_000, note="rent", now=m3)
    send(wallet, wang, to="zhang_li", amount_minor=1_200, note="lunch", now=m3 + timedelta(days=3))
    wang_cny, zhang_cny = (
        balance(database, person).id  # type: ignore[union-attr]
        for person in (wang, zhang)
    )

    def ledger_transfer(request: TransferRequest, at: datetime) -> int:
        return database.run(
            lambda s: ledger.submit_transfer(s, request, initiator=SYSTEM, now=at)
        ).id

    hold = ledger_transfer(
        TransferRequest(
            kind=TransferKind.pending,
            debit_account_id=wang_cny,
            credit_account_id=zhang_cny,
            asset="CNY",
            amount_minor=2_000,
            reason_code="test_hold",
            timeout_seconds=3600,
        ),
        m2,
    )
    ledger_transfer(
        TransferRequest(
            kind=TransferKind.post_pending, pending_id=hold, amount_minor=1_500, reason_code="test"
        ),
        m2 + timedelta(minutes=5),
    )
    released = ledger_transfer(
        TransferRequest(
            kind=TransferKind.pending,
            debit_account_id=wang_cny,
            credit_account_id=zhang_cny,
            asset="CNY",
            amount_minor=700,
            reason_code="test_hold",
            timeout_seconds=3600,
        ),
        m1,
    )
    ledger_transfer(
        TransferRequest(kind=TransferKind.void_pending, pending_id=released, reason_code="test"),
        m1 + timedelta(minutes=5),
    )
    rent = database.run(
        lambda s: s.scalars(select(Transfer.id).where(Transfer.reference == first)).one(),
        write=False,
    )
    ledger_transfer(
        TransferRequest(reversal_of=rent, amount_minor=400, reason_code="test_reversal"),
        m1 + timedelta(hours=1),
    )
    send(wallet, zhang, to="wang_wei", amount_minor=300, note="coffee")  # this month

    months = [month_of(moment) for moment in (m3, m2, m1, local_now)]
    assert len(set(months)) == 4
    counted_back = {month: read(wallet, wang, month) for month in months}
    # Half way: the month balances stop before the later months, whose postings are added.
    assert close_months(database, timezone=TIMEZONE, now=m2 + timedelta(days=1)) > 0
    for month in months:
        assert read(wallet, wang, month) == counted_back[month], month
    assert close_months(database, timezone=TIMEZONE) > 0
    for month in months:
        assert read(wallet, wang, month) == counted_back[month], month

    # The later months did start from a month balance; the first has none before it.
    def opening_row(month: str) -> object:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=zone).astimezone(UTC)
        return database.run(
            lambda s: ledger_queries.month_balance_at(s, account_id=wang_cny, at=start),
            write=False,
        )

    assert opening_row(months[0]) is None
    assert all(opening_row(month) is not None for month in months[1:])
    openings = [counted_back[month].sections[0].opening_minor for month in months]
    assert openings == [0, 9_000 - 1_200, 7_800 - 1_500, 6_300 - 400]
