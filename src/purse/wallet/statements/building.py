"""The worker job that builds queued statements, with progress a page can follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from purse.models import utc_now
from purse.wallet.context import Wallet
from purse.wallet.models import Statement
from purse.wallet.statements.lines import statement_data
from purse.wallet.statements.rendering import RENDERERS

log = structlog.get_logger(__name__)


# Progress is written every this many lines, each time in a small transaction of its own.
PROGRESS_EVERY_LINES = 200


# A statement still running this long after it was asked for was left by a worker that
# died; the next worker builds it again (building twice is harmless: same content).
RUNNING_STALE_SECONDS = 60 * 60


BUILD_BATCH_MAX = 100


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
