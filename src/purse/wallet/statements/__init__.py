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

from purse.wallet.statements.building import build_statements
from purse.wallet.statements.lines import StatementData, StatementLine, statement_data
from purse.wallet.statements.rendering import render_csv, render_pdf
from purse.wallet.statements.requests import (
    FORMATS,
    MEDIA_TYPES,
    download_name,
    recent_statements,
    request_statement,
    statement_file,
    statement_for,
)

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "StatementData",
    "StatementLine",
    "build_statements",
    "download_name",
    "recent_statements",
    "render_csv",
    "render_pdf",
    "request_statement",
    "statement_data",
    "statement_file",
    "statement_for",
]
