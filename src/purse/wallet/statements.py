"""Monthly statements: what a wallet held and every posted line of one month, as CSV or PDF.

A user asks for a month (:func:`request_statement`), a worker builds it
(:func:`build_statements`) while the page polls its progress, and the user
downloads it (:func:`statement_file`).

Why a statement reads the ledger and not the operations: a statement must
reconcile to the cent. Its lines are the posted transfers on the user's wallet
accounts (kinds ``posted`` and ``post_pending``), so the opening balance plus
the lines is the closing balance, exactly, and both balances are what the
ledger says. Operations only describe the lines (who, why, which note). A hold
that was voided or expired never moved posted money, so it is no line.

Months are calendar months in the operator's time zone (``settings.timezone``),
the same one the limits and the activity filters use.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import structlog
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from purse.errors import ValidationFailed
from purse.i18n import normalize_locale, translate
from purse.identity.models import User
from purse.ledger.models import Transfer
from purse.models import utc_now
from purse.money.amounts import format_amount, to_string
from purse.money.assets import Asset
from purse.wallet import rules
from purse.wallet.errors import (
    StatementFailed,
    StatementMonthInvalid,
    StatementNotFound,
    StatementNotReady,
)
from purse.wallet.models import Operation, Statement, WalletAccount
from purse.wallet.operations import user_owner

if TYPE_CHECKING:
    from purse.wallet.context import Caller, Wallet

log = structlog.get_logger(__name__)

FORMATS = ("csv", "pdf")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
FIRST_YEAR = 2000
# Progress is written every this many lines, each time in a small transaction of its own.
PROGRESS_EVERY_LINES = 200
# A statement is built in memory; beyond this many lines it fails instead of exhausting it.
LINES_MAX = 50_000
# A statement still running this long after it was asked for was left by a worker that
# died; the next worker builds it again (building twice is harmless: same content).
RUNNING_STALE_SECONDS = 60 * 60
BUILD_BATCH_MAX = 100
# Operations and users are looked up by this many keys at a time.
LOOKUP_CHUNK_SIZE = 500

# Only these kinds change posted balances; a post_pending carries the amount posted.
POSTING_KINDS = ("posted", "post_pending")

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_CJK_FONT = "STSong-Light"

# A transfer as read for a line: (id, created at, signed amount, reference, reversal of).
_RawLine = tuple[int, datetime, int, str | None, int | None]


# Asking for a statement and reading it ---------------------------------------------------


def parse_month(month: str) -> tuple[int, int]:
    """(year, month) of "YYYY-MM", or ``statement_month_invalid``."""
    match = _MONTH.match(month.strip())
    if match is None:
        raise StatementMonthInvalid()
    year, number = int(match[1]), int(match[2])
    if not (FIRST_YEAR <= year and 1 <= number <= 12):
        raise StatementMonthInvalid()
    return year, number


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The first instant of ``month`` and of the month after, in ``timezone``."""
    year, number = parse_month(month)
    zone = ZoneInfo(timezone)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start, end


def request_statement(
    session: Session,
    *,
    wallet: Wallet,
    caller: Caller,
    month: str,
    format: str,
    locale: str,
    now: datetime | None = None,
) -> Statement:
    """Queue a statement of one of the caller's months; a worker builds it.

    The same statement already waiting or being built is returned instead of a
    second one, so reloading the page does not queue the work again.
    """
    now = now or utc_now()
    if format not in FORMATS:
        raise ValidationFailed(field="format", allowed=", ".join(FORMATS))
    year, number = parse_month(month)
    local = now.astimezone(ZoneInfo(wallet.settings.timezone))
    if (year, number) > (local.year, local.month):
        raise StatementMonthInvalid()
    month = f"{year:04d}-{number:02d}"
    locale = normalize_locale(locale)
    waiting = session.scalars(
        select(Statement).where(
            Statement.user_id == caller.user_id,
            Statement.month == month,
            Statement.format == format,
            Statement.locale == locale,
            Statement.status.in_(("queued", "running")),
        )
    ).first()
    if waiting is not None:
        return waiting
    statement = Statement(
        user_id=caller.user_id,
        month=month,
        format=format,
        locale=locale,
        status="queued",
        lines_total=0,
        lines_done=0,
        created_at=now,
    )
    session.add(statement)
    session.flush()
    return statement


def statement_for(session: Session, *, user_id: int, statement_id: int) -> Statement:
    """One of the user's statements; anyone else's is "not found"."""
    statement = session.scalars(
        select(Statement).where(Statement.id == statement_id, Statement.user_id == user_id)
    ).first()
    if statement is None:
        raise StatementNotFound()
    return statement


def statement_file(session: Session, *, user_id: int, statement_id: int) -> bytes:
    """The content of one of the user's statements once it is ready."""
    statement = statement_for(session, user_id=user_id, statement_id=statement_id)
    if statement.status in ("queued", "running"):
        raise StatementNotReady()
    if statement.status != "ready" or statement.content is None:
        raise StatementFailed()
    return statement.content


def recent_statements(session: Session, *, user_id: int, limit: int = 12) -> list[Statement]:
    """The user's latest statement requests, newest first (without their content)."""
    from sqlalchemy.orm import defer

    return list(
        session.scalars(
            select(Statement)
            .where(Statement.user_id == user_id)
            .options(defer(Statement.content))
            .order_by(Statement.id.desc())
            .limit(limit)
        )
    )


def download_name(statement: Statement) -> str:
    return f"purse-statement-{statement.month}.{statement.format}"


# What a statement says ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    transfer_id: int
    at: datetime  # in the statement's time zone
    reference: str | None
    kind: str | None  # the operation's kind; None when no operation explains the transfer
    # An English message id, translated when rendered, and the values of its placeholders.
    label: str
    label_fields: tuple[tuple[str, str], ...]
    reversal: bool
    note: str | None
    amount_minor: int  # signed: money into the wallet is positive
    balance_minor: int  # the posted balance after this line

    def description(self, locale: str) -> str:
        text = translate(self.label, locale).format(**dict(self.label_fields))
        if self.reversal:
            text = translate("Reversal: {description}", locale).format(description=text)
        return text


@dataclass(frozen=True, slots=True)
class StatementSection:
    asset: Asset
    opening_minor: int
    lines: tuple[StatementLine, ...]
    in_minor: int  # the sum of the positive lines
    out_minor: int  # the sum of the negative lines, as a positive amount
    closing_minor: int


@dataclass(frozen=True, slots=True)
class StatementData:
    user_id: int
    handle: str
    month: str
    timezone: str
    sections: tuple[StatementSection, ...]

    @property
    def line_count(self) -> int:
        return sum(len(section.lines) for section in self.sections)


def statement_data(session: Session, *, wallet: Wallet, user_id: int, month: str) -> StatementData:
    """Opening balance, posted lines, totals and closing balance of each of the user's wallets.

    Run it in one read transaction: the balances and the lines must come from the
    same snapshot for the reconciliation below to hold while money keeps moving.
    """
    timezone = wallet.settings.timezone
    start, end = month_bounds(month, timezone)
    zone = ZoneInfo(timezone)
    user = session.get_one(User, user_id)
    accounts = session.execute(
        select(WalletAccount.asset, WalletAccount.account_id).where(
            WalletAccount.owner == user_owner(user_id)
        )
    ).all()
    order = {code: index for index, code in enumerate(wallet.settings.wallet_assets)}
    accounts = sorted(accounts, key=lambda row: (order.get(row.asset, len(order)), row.asset))

    raw: list[tuple[str, int, int, list[_RawLine]]] = []
    line_count = 0
    for asset_code, account_id in accounts:
        opening, closing = _balances_at(session, account_id=account_id, start=start, end=end)
        rows = list(
            session.execute(
                select(
                    Transfer.id,
                    Transfer.created_at,
                    Transfer.credit_account_id,
                    Transfer.amount_minor,
                    Transfer.reference,
                    Transfer.reversal_of,
                )
                .where(
                    _touches(account_id),
                    Transfer.kind.in_(POSTING_KINDS),
                    Transfer.created_at >= start,
                    Transfer.created_at < end,
                )
                .order_by(Transfer.id)
                .limit(LINES_MAX + 1)
            )
        )
        line_count += len(rows)
        if line_count > LINES_MAX:
            raise ValueError(f"a statement may have at most {LINES_MAX} lines")
        lines: list[_RawLine] = [
            (
                row.id,
                row.created_at,
                row.amount_minor if row.credit_account_id == account_id else -row.amount_minor,
                row.reference,
                row.reversal_of,
            )
            for row in rows
        ]
        raw.append((asset_code, opening, closing, lines))

    operations = _operations(session, {line[3] for _, _, _, lines in raw for line in lines})
    parties = _parties(
        session,
        {
            other
            for operation in operations.values()
            if operation.kind == "send"
            for other in (operation.user_id, operation.counterparty_user_id)
            if other is not None and other != user_id
        },
    )

    sections = []
    for asset_code, opening, closing, lines in raw:
        balance = opening
        built = []
        for transfer_id, created_at, amount, reference, reversal_of in lines:
            balance += amount
            operation = operations.get(reference) if reference is not None else None
            label, fields = _label(operation, user_id=user_id, parties=parties)
            built.append(
                StatementLine(
                    transfer_id=transfer_id,
                    at=created_at.astimezone(zone),
                    reference=reference,
                    kind=operation.kind if operation is not None else None,
                    label=label,
                    label_fields=fields,
                    reversal=reversal_of is not None,
                    note=operation.note if operation is not None else None,
                    amount_minor=amount,
                    balance_minor=balance,
                )
            )
        in_minor = sum(line.amount_minor for line in built if line.amount_minor > 0)
        out_minor = -sum(line.amount_minor for line in built if line.amount_minor < 0)
        # The closing balance was summed by the database on its own; the lines must add up to it.
        assert balance == closing, (asset_code, opening, balance, closing)
        assert opening + in_minor - out_minor == closing
        sections.append(
            StatementSection(
                asset=wallet.assets.get(asset_code),
                opening_minor=opening,
                lines=tuple(built),
                in_minor=in_minor,
                out_minor=out_minor,
                closing_minor=closing,
            )
        )
    return StatementData(
        user_id=user_id,
        handle=user.handle,
        month=f"{start.year:04d}-{start.month:02d}",
        timezone=timezone,
        sections=tuple(sections),
    )


def _touches(account_id: int) -> Any:
    return or_(Transfer.debit_account_id == account_id, Transfer.credit_account_id == account_id)


def _balances_at(
    session: Session, *, account_id: int, start: datetime, end: datetime
) -> tuple[int, int]:
    """The posted balance of an account at ``start`` and at ``end``."""
    signed = case(
        (Transfer.credit_account_id == account_id, Transfer.amount_minor),
        else_=-Transfer.amount_minor,
    )
    opening, closing = session.execute(
        select(
            func.coalesce(func.sum(case((Transfer.created_at < start, signed), else_=0)), 0),
            func.coalesce(func.sum(signed), 0),
        ).where(_touches(account_id), Transfer.kind.in_(POSTING_KINDS), Transfer.created_at < end)
    ).one()
    return int(opening), int(closing)


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    ordered = sorted(values)
    for index in range(0, len(ordered), LOOKUP_CHUNK_SIZE):
        yield ordered[index : index + LOOKUP_CHUNK_SIZE]


def _operations(session: Session, references: set[str | None]) -> dict[str, Operation]:
    found: dict[str, Operation] = {}
    for chunk in _chunks(reference for reference in references if reference is not None):
        for operation in session.scalars(select(Operation).where(Operation.reference.in_(chunk))):
            found[operation.reference] = operation
    return found


def _parties(session: Session, user_ids: set[int]) -> dict[int, tuple[str, str]]:
    """(masked name, handle) of each user: enough to recognise them, not to learn who they are."""
    found: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(user_ids):
        for other in session.scalars(select(User).where(User.id.in_(chunk))):
            found[other.id] = (rules.mask_name(other.display_name), other.handle)
    return found


def _label(
    operation: Operation | None, *, user_id: int, parties: dict[int, tuple[str, str]]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    if operation is None:
        return "Adjustment", ()
    if operation.kind == "top_up":
        return "Top-up", ()
    if operation.kind == "withdrawal":
        return "Withdrawal", ()
    if operation.kind == "convert":
        return "Converted {from_asset} to {to_asset} at {rate}", (
            ("from_asset", operation.asset),
            ("to_asset", operation.to_asset or ""),
            ("rate", operation.rate or ""),
        )
    assert operation.kind == "send", operation.kind
    sent = operation.user_id == user_id
    other = operation.counterparty_user_id if sent else operation.user_id
    assert other is not None
    name, handle = parties[other]
    label = "Sent to {name} (@{handle})" if sent else "Received from {name} (@{handle})"
    return label, (("name", name), ("handle", handle))


# Rendering ----------------------------------------------------------------------------------

Progress = Callable[[int], None]

CSV_COLUMNS = ("Currency", "Date", "Reference", "Description", "Note", "Amount", "Balance")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _csv_text(text: str) -> str:
    """Text a spreadsheet shows as text, never runs as a formula.

    Notes and names are written by other people (a sender's note is in the
    recipient's statement); "=HYPERLINK(...)" must not become a live formula.
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(data: StatementData, *, locale: str, progress: Progress | None = None) -> bytes:
    """The statement as CSV: one header row, then a section per asset.

    UTF-8 with a byte order mark, which is how Excel knows to read Chinese correctly.
    Amounts are plain decimals at the asset's scale ("-25.50"), for spreadsheets.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([translate(column, locale) for column in CSV_COLUMNS])
    done = 0
    for section in data.sections:
        asset = section.asset
        code = asset.code
        writer.writerow(
            [
                code,
                "",
                "",
                translate("Opening balance", locale),
                "",
                "",
                to_string(section.opening_minor, asset),
            ]
        )
        for line in section.lines:
            writer.writerow(
                [
                    code,
                    line.at.strftime(_TIME_FORMAT),
                    line.reference or "",
                    _csv_text(line.description(locale)),
                    _csv_text(line.note or ""),
                    to_string(line.amount_minor, asset),
                    to_string(line.balance_minor, asset),
                ]
            )
            done += 1
            if progress is not None:
                progress(done)
        for label, amount in (("Total in", section.in_minor), ("Total out", -section.out_minor)):
            writer.writerow(
                [code, "", "", translate(label, locale), "", to_string(amount, asset), ""]
            )
        writer.writerow(
            [
                code,
                "",
                "",
                translate("Closing balance", locale),
                "",
                "",
                to_string(section.closing_minor, asset),
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


@cache
def _cjk_font() -> str:
    # A CID font every PDF reader has (Adobe's Asian font packs, or a substitute):
    # Chinese renders without shipping a font file.
    pdfmetrics.registerFont(UnicodeCIDFont(_CJK_FONT))
    return _CJK_FONT


def _is_latin(text: str) -> bool:
    """Whether the standard PDF fonts (WinAnsi encoding) can draw ``text``."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Fonts:
    regular: str
    bold: str
    fallback: str  # for text the regular font cannot draw (a Chinese name in English)

    def for_text(self, text: str, *, bold: bool = False) -> str:
        if self.regular == self.fallback or _is_latin(text):
            return self.bold if bold else self.regular
        return self.fallback


def _fonts(locale: str) -> _Fonts:
    cjk = _cjk_font()
    if normalize_locale(locale) == "zh-CN":
        return _Fonts(regular=cjk, bold=cjk, fallback=cjk)
    return _Fonts(regular="Helvetica", bold="Helvetica-Bold", fallback=cjk)


def render_pdf(data: StatementData, *, locale: str, progress: Progress | None = None) -> bytes:
    """The statement as an A4 PDF: a title, then per asset a table from opening to closing."""
    fonts = _fonts(locale)
    title = f"{translate('Statement', locale)} {data.month} · @{data.handle}"

    def style(size: float, *, bold: bool = False, right: bool = False) -> ParagraphStyle:
        return ParagraphStyle(
            f"statement-{size}-{bold}-{right}",
            fontName=fonts.bold if bold else fonts.regular,
            fontSize=size,
            leading=size * 1.3,
            alignment=TA_RIGHT if right else 0,
        )

    heading, subheading, cell = style(16, bold=True), style(11, bold=True), style(8)
    cell_right = style(8, right=True)

    def paragraph(text: str, base: ParagraphStyle, *, bold: bool = False) -> Paragraph:
        font = fonts.for_text(text, bold=bold)
        chosen = (
            base if font == base.fontName else ParagraphStyle(base.name + font, base, fontName=font)
        )
        return Paragraph(escape(text), chosen)

    def money(amount_minor: int, asset: Asset) -> str:
        return format_amount(amount_minor, asset, locale)

    story: list[Any] = [
        paragraph(title, heading, bold=True),
        paragraph(f"{translate('Time zone', locale)}: {data.timezone}", cell),
        Spacer(1, 6 * mm),
    ]
    header = [
        translate(column, locale)
        for column in ("Date", "Reference", "Description", "Amount", "Balance")
    ]
    done = 0
    for section in data.sections:
        asset = section.asset
        story.append(paragraph(asset.code, subheading, bold=True))
        rows: list[list[Any]] = [
            [
                paragraph(text, cell_right if index >= 3 else cell, bold=True)
                for index, text in enumerate(header)
            ]
        ]
        rows.append(
            [
                "",
                "",
                paragraph(translate("Opening balance", locale), cell, bold=True),
                "",
                money(section.opening_minor, asset),
            ]
        )
        for line in section.lines:
            description = line.description(locale)
            if line.note:
                description = f"{description} — {line.note}"
            rows.append(
                [
                    line.at.strftime("%Y-%m-%d %H:%M"),
                    line.reference or "",
                    paragraph(description, cell),
                    money(line.amount_minor, asset),
                    money(line.balance_minor, asset),
                ]
            )
            done += 1
            if progress is not None:
                progress(done)
        if not section.lines:
            rows.append(
                ["", "", paragraph(translate("No transactions this month.", locale), cell), "", ""]
            )
        for label, amount in (("Total in", section.in_minor), ("Total out", -section.out_minor)):
            rows.append(
                [
                    "",
                    "",
                    paragraph(translate(label, locale), cell, bold=True),
                    money(amount, asset),
                    "",
                ]
            )
        rows.append(
            [
                "",
                "",
                paragraph(translate("Closing balance", locale), cell, bold=True),
                "",
                money(section.closing_minor, asset),
            ]
        )
        commands: list[Any] = [
            ("FONTNAME", (0, 0), (-1, -1), fonts.regular),
            ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("ALIGN", (3, 0), (4, -1), "RIGHT"),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
            ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
            ("LINEABOVE", (0, -3), (-1, -3), 0.5, colors.grey),
            ("FONTNAME", (0, -1), (-1, -1), fonts.bold),
        ]
        for index, row in enumerate(rows):
            texts = [value for value in row if isinstance(value, str)]
            if not all(_is_latin(text) for text in texts):
                commands.append(("FONTNAME", (0, index), (-1, index), fonts.fallback))
        table = Table(
            rows,
            colWidths=[28 * mm, 30 * mm, 60 * mm, 28 * mm, 28 * mm],
            repeatRows=1,
        )
        table.setStyle(TableStyle(commands))
        story.extend([table, Spacer(1, 6 * mm)])

    def footer(canvas: Canvas, document: Any) -> None:
        text = f"@{data.handle} · {data.month} · " + translate("Page {page}", locale).format(
            page=canvas.getPageNumber()
        )
        canvas.saveState()
        canvas.setFont(fonts.for_text(text), 7)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, text)
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="purse",
        # No creation time or random document id: the same data gives the same bytes.
        invariant=True,
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


RENDERERS: dict[str, Callable[..., bytes]] = {"csv": render_csv, "pdf": render_pdf}


# The worker job -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    user_id: int
    month: str
    format: str
    locale: str


def _claim(session: Session, *, limit: int, now: datetime) -> list[_Claimed]:
    """Take up to ``limit`` statements to build, marking them running.

    On PostgreSQL, ``SKIP LOCKED`` lets several workers claim side by side, each
    its own statements; SQLite has one writer at a time anyway.
    """
    stale = now - timedelta(seconds=RUNNING_STALE_SECONDS)
    query = (
        select(Statement)
        .where(
            or_(
                Statement.status == "queued",
                and_(Statement.status == "running", Statement.created_at < stale),
            )
        )
        .order_by(Statement.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for statement in session.scalars(query):
        statement.status = "running"
        statement.lines_total = 0
        statement.lines_done = 0
        claimed.append(
            _Claimed(
                id=statement.id,
                user_id=statement.user_id,
                month=statement.month,
                format=statement.format,
                locale=statement.locale,
            )
        )
    return claimed


def _set_progress(session: Session, statement_id: int, **values: int) -> None:
    session.execute(
        update(Statement)
        .where(Statement.id == statement_id, Statement.status == "running")
        .values(**values)
    )


def _finish(
    session: Session,
    statement_id: int,
    *,
    content: bytes | None,
    lines_done: int | None,
    now: datetime,
) -> None:
    values: dict[str, Any] = {
        "status": "ready" if content is not None else "failed",
        "content": content,
        "finished_at": now,
    }
    if lines_done is not None:
        values["lines_done"] = lines_done
    # Only a running statement: a worker that found it stale may have finished it already.
    session.execute(
        update(Statement)
        .where(Statement.id == statement_id, Statement.status == "running")
        .values(**values)
    )


def _build_one(
    wallet: Wallet, claimed: _Claimed, *, progress_every_lines: int, now: datetime | None
) -> bool:
    database = wallet.database
    try:
        data = database.run(
            lambda session: statement_data(
                session, wallet=wallet, user_id=claimed.user_id, month=claimed.month
            ),
            write=False,
        )
        total = data.line_count
        database.run(lambda session: _set_progress(session, claimed.id, lines_total=total))

        def report(done: int) -> None:
            if done % progress_every_lines == 0 and done < total:
                database.run(lambda session: _set_progress(session, claimed.id, lines_done=done))

        content = RENDERERS[claimed.format](data, locale=claimed.locale, progress=report)
        database.run(
            lambda session: _finish(
                session, claimed.id, content=content, lines_done=total, now=now or utc_now()
            )
        )
    except Exception as error:
        log.error(
            "statement.failed",
            statement_id=claimed.id,
            error_type=type(error).__name__,
            exc_info=error,
        )
        # If this write fails too, the statement stays running until it is stale and rebuilt.
        database.run(
            lambda session: _finish(
                session, claimed.id, content=None, lines_done=None, now=now or utc_now()
            )
        )
        return False
    log.info("statement.ready", statement_id=claimed.id, lines=total, format=claimed.format)
    return True


def build_statements(
    wallet: Wallet,
    *,
    limit: int = 5,
    now: datetime | None = None,
    progress_every_lines: int = PROGRESS_EVERY_LINES,
) -> int:
    """Build queued statements (a worker job); returns how many became ready.

    Each statement is claimed in one short transaction, read in one read
    transaction, and rendered outside any transaction, writing its progress in
    small transactions of their own so that a page polling it sees it move.
    """
    assert 1 <= limit <= BUILD_BATCH_MAX
    assert progress_every_lines >= 1
    claimed = wallet.database.run(
        lambda session: _claim(session, limit=limit, now=now or utc_now())
    )
    return sum(
        _build_one(wallet, one, progress_every_lines=progress_every_lines, now=now)
        for one in claimed
    )
