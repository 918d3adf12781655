"""Counters of attempts per key and window, kept in the database so they hold across processes.

Sign-in failures per client address and per unknown identifier, and recipient
look-ups per user and per address, are counted here: a row per key, reset when
its window has passed. On PostgreSQL the row is locked while it is counted, so
concurrent attempts count each other; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from purse.db import RetryTransaction
from purse.identity.models import AddressFailures

KEY_LENGTH_MAX = 64


def counter(session: Session, key: str, *, now: datetime, window_seconds: int) -> AddressFailures:
    """The counter of ``key`` in its current window (a new window once the last one passed)."""
    if len(key) > KEY_LENGTH_MAX:
        key = key[:24] + hashlib.sha256(key.encode()).hexdigest()[: KEY_LENGTH_MAX - 24]
    query = select(AddressFailures).where(AddressFailures.address == key)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        row = AddressFailures(address=key, failures=0, window_started_at=now)
        session.add(row)
        try:
            session.flush()
        except IntegrityError as error:
            raise RetryTransaction() from error  # counted concurrently: count again
    elif row.window_started_at + timedelta(seconds=window_seconds) <= now:
        row.failures, row.window_started_at = 0, now
    return row


def take(
    session: Session, key: str, *, now: datetime, window_seconds: int, attempts_max: int
) -> int | None:
    """Count one attempt under ``key``; None if it is allowed, else the seconds to wait.

    A refused attempt is not counted, so waiting out the window always works.
    """
    row = counter(session, key, now=now, window_seconds=window_seconds)
    if row.failures >= attempts_max:
        window_end = row.window_started_at + timedelta(seconds=window_seconds)
        return max(1, int((window_end - now).total_seconds()) + 1)
    row.failures += 1
    return None
