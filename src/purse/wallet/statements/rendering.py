"""A statement as CSV (for spreadsheets) or PDF (to print and keep), in the user's language."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from purse.i18n import N_, normalize_locale, translate
from purse.money.amounts import format_amount, to_string
from purse.money.assets import Asset
from purse.wallet.statements.lines import StatementData

_CJK_FONT = "STSong-Light"


Progress = Callable[[int], None]


CSV_COLUMNS = (
    N_("Currency"),
    N_("Date"),
    N_("Reference"),
    N_("Description"),
    N_("Note"),
    N_("Amount"),
    N_("Balance"),
)
PDF_COLUMNS = (N_("Date"), N_("Reference"), N_("Description"), N_("Amount"), N_("Balance"))
TOTALS = (N_("Total in"), N_("Total out"))


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
        for label, amount in zip(TOTALS, (section.in_minor, -section.out_minor), strict=True):
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
        paragraph(translate("Time zone", locale) + f": {data.timezone}", cell),
        Spacer(1, 6 * mm),
    ]
    header = [translate(column, locale) for column in PDF_COLUMNS]
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
        for label, amount in zip(TOTALS, (section.in_minor, -section.out_minor), strict=True):
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
