"""Asking for a statement, and reading one back: one of the user's own, else "not found"."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from purse.errors import ValidationFailed
from purse.i18n import normalize_locale
from purse.identity import access
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.wallet.context import Wallet
from purse.wallet.errors import (
    StatementFailed,
    StatementMonthInvalid,
    StatementNotFound,
    StatementNotReady,
)
from purse.wallet.models import Statement

FORMATS = ("csv", "pdf")


MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


FIRST_YEAR = 2000


_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


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
    principal: Principal,
    month: str,
    format: str,
    locale: str,
    now: datetime | None = None,
) -> Statement:
    """Queue a statement of one of the principal's months; a worker builds it.

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
            Statement.user_id == principal.wallet_user_id,
            Statement.month == month,
            Statement.format == format,
            Statement.locale == locale,
            Statement.status.in_(("queued", "running")),
        )
    ).first()
    if waiting is not None:
        return waiting
    statement = Statement(
        user_id=principal.wallet_user_id,
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


def statement_for(session: Session, *, principal: Principal, statement_id: int) -> Statement:
    """A statement the principal may read (their own); anyone else's is "not found"."""
    statement = session.get(Statement, statement_id)
    if statement is None or not access.decide(
        session,
        principal=principal,
        permission=access.Permission.read_history,
        subject_user_id=statement.user_id,
    ):
        raise StatementNotFound()
    return statement


def statement_file(session: Session, *, principal: Principal, statement_id: int) -> bytes:
    """The content of a statement the principal may read, once it is ready."""
    statement = statement_for(session, principal=principal, statement_id=statement_id)
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
