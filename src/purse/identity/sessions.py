"""Sessions and tokens: start, authenticate, refresh with rotation, list, end.

* Tokens are 256 random bits (``secrets``), prefixed by kind so a leaked one is
  recognisable (``pws_`` web session, ``pat_`` access, ``prt_`` refresh). Only
  their SHA-256 is stored: with that much entropy a fast hash is enough, and a
  copy of the database yields no usable token.
* A web session ends after ``web_session_idle_seconds`` without use or
  ``web_session_lifetime_seconds`` in all. An API session has a short-lived
  access token and a refresh token; refreshing replaces both, and presenting a
  refresh token that was already replaced ends the session (it was copied).
* Ending is recorded, never deleted, so the security centre can show history.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session as DbSession

from purse.audit.service import Actor, record
from purse.db import Database
from purse.devices import Device
from purse.identity.errors import SessionInvalid, SessionNotFound
from purse.identity.models import Session, User
from purse.models import utc_now
from purse.prepared import Prepared
from purse.settings import Settings

_PREFIX = {"web": "pws_", "api": "pat_"}
_REFRESH_PREFIX = "prt_"
USER_AGENT_LENGTH_MAX = 256

# Built once, of plain columns: every authenticated request runs it.
_sessions, _users = cast(Table, Session.__table__), cast(Table, User.__table__)
_LIVE = Prepared(
    select(
        _sessions.c.id,
        _sessions.c.user_id,
        _sessions.c.kind,
        _sessions.c.ended_at,
        _sessions.c.token_expires_at,
        _sessions.c.expires_at,
        _sessions.c.last_seen_at,
        _sessions.c.authenticated_at,
        _sessions.c.device,
        _sessions.c.auth_method,
        _sessions.c.created_at,
        _users.c.role,
        _users.c.status,
    )
    .join(_users, _users.c.id == _sessions.c.user_id)
    .where(_sessions.c.token_hash == bindparam("token_hash"))
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def device_of(user_agent: str) -> Device:
    """The device a person recognises: Mobile Safari, iOS, iPhone (``purse.devices``)."""
    from ua_parser import parse

    if not user_agent.strip():
        return Device()
    parsed = parse(user_agent[:USER_AGENT_LENGTH_MAX])
    browser = parsed.user_agent.family if parsed.user_agent else None
    if not browser or browser == "Other":
        return Device.unrecognised(user_agent)
    system = parsed.os.family if parsed.os and parsed.os.family != "Other" else None
    model = parsed.device.family if parsed.device and parsed.device.family != "Other" else None
    return Device.of(browser, system, model)


@dataclass(frozen=True, slots=True)
class Issued:
    """What a client receives once: the session id and its token(s)."""

    session_id: int
    token: str
    token_expires_at: datetime
    refresh_token: str | None = None


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A live session, as every request that presents its token gets it."""

    session_id: int
    user_id: int
    role: str
    kind: str  # "web" (cookie) or "api" (access token)
    authenticated_at: datetime  # the last password check: the sign-in, or a step-up since
    device: str = Device().stored()  # as stored: purse.devices formats it for people
    auth_method: str = "password"  # the factors checked at sign-in: "password+totp"
    created_at: datetime | None = None


def start_session(
    db: DbSession,
    *,
    settings: Settings,
    user_id: int,
    kind: str,
    user_agent: str,
    actor: Actor,
    auth_method: str = "password",
    now: datetime | None = None,
) -> tuple[Issued, bool]:
    """Open a session after a successful login; returns it and whether the device is new.

    ``auth_method`` names the factors the sign-in checked ("password+totp"); every
    transfer started in the session records them.
    """
    assert kind in _PREFIX
    now = now or utc_now()
    seen = device_of(user_agent)
    device = seen.stored()
    # Sessions from before devices were stored as names hold the English sentence.
    known_device = db.scalar(
        select(Session.id)
        .where(Session.user_id == user_id, Session.device.in_((device, seen.legacy_english())))
        .limit(1)
    )
    token = _PREFIX[kind] + secrets.token_urlsafe(32)
    refresh = _REFRESH_PREFIX + secrets.token_urlsafe(32) if kind == "api" else None
    if kind == "web":
        expires_at = now + timedelta(seconds=settings.web_session_lifetime_seconds)
        token_expires_at = expires_at
    else:
        expires_at = now + timedelta(seconds=settings.refresh_token_ttl_seconds)
        token_expires_at = now + timedelta(seconds=settings.access_token_ttl_seconds)
    row = Session(
        user_id=user_id,
        kind=kind,
        token_hash=token_hash(token),
        token_expires_at=token_expires_at,
        refresh_hash=token_hash(refresh) if refresh else None,
        device=device,
        user_agent=user_agent[:USER_AGENT_LENGTH_MAX],
        address=actor.address,
        created_at=now,
        last_seen_at=now,
        authenticated_at=now,
        auth_method=auth_method,
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    record(
        db,
        kind="session_started",
        actor=actor,
        subject_user_id=user_id,
        data={
            "session_id": row.id,
            "kind": kind,
            "device": device,
            "new_device": known_device is None,
        },
        now=now,
    )
    return Issued(row.id, token, token_expires_at, refresh), known_device is None


def find_live(
    db: DbSession, *, settings: Settings, token: str, kind: str, now: datetime | None = None
) -> tuple[Authenticated, bool]:
    """The live session behind ``token``, or ``session_invalid``: a read.

    Also says whether its use is due to be recorded (``last_seen_at`` older than
    ``session_touch_interval_seconds``), which :func:`touch` does.
    """
    now = now or utc_now()
    return _live(_LIVE.first(db, _token_of(token, kind)), settings=settings, kind=kind, now=now)


def _token_of(token: str, kind: str) -> dict[str, str]:
    """The parameters of the live-session read for ``token`` (a ``kind`` token, or refused)."""
    if not token.startswith(_PREFIX[kind]):
        raise SessionInvalid()
    return {"token_hash": token_hash(token)}


def _live(
    session: Any, *, settings: Settings, kind: str, now: datetime
) -> tuple[Authenticated, bool]:
    """What :func:`find_live` says of the row it read."""
    if session is None:
        raise SessionInvalid()
    idle_limit = timedelta(seconds=settings.web_session_idle_seconds)
    if (
        session.ended_at is not None
        or session.kind != kind
        or session.status != "active"
        or session.token_expires_at <= now
        or session.expires_at <= now
        or (kind == "web" and session.last_seen_at + idle_limit <= now)
    ):
        raise SessionInvalid()
    touch_due = (
        session.last_seen_at + timedelta(seconds=settings.session_touch_interval_seconds) <= now
    )
    current = Authenticated(
        session_id=session.id,
        user_id=session.user_id,
        role=session.role,
        kind=session.kind,
        authenticated_at=session.authenticated_at,
        device=session.device,
        auth_method=session.auth_method,
        created_at=session.created_at,
    )
    return current, touch_due


def touch(db: DbSession, *, session_id: int, now: datetime) -> None:
    """Record that a session was used at ``now`` (it keeps a web session from idling out)."""
    db.execute(
        update(Session)
        .where(Session.id == session_id, Session.last_seen_at < now)
        .values(last_seen_at=now)
    )


def authenticate(
    db: DbSession, *, settings: Settings, token: str, kind: str, now: datetime | None = None
) -> Authenticated:
    """The live session behind ``token``, or ``session_invalid``; records the use.

    Inside one (write) transaction. Requests use :func:`authenticate_request`, which
    reads in a read transaction and writes only when the use is due to be recorded.
    """
    now = now or utc_now()
    current, touch_due = find_live(db, settings=settings, token=token, kind=kind, now=now)
    if touch_due:
        touch(db, session_id=current.session_id, now=now)
    return current


def authenticate_request(database: Database, *, token: str, kind: str) -> Authenticated:
    """Authenticate a request without taking the write lock on every call.

    The check is a read, in a read transaction: on SQLite, reads do not queue behind
    the single writer, so a signed-in page or a balance is not slowed by sends in
    flight. The use is written at most once per ``session_touch_interval_seconds``
    per session, in a short write transaction of its own.
    """
    settings = database.settings
    now = utc_now()
    current, touch_due = database.run(
        lambda db: find_live(db, settings=settings, token=token, kind=kind, now=now),
        write=False,
    )
    if touch_due:
        database.run(lambda db: touch(db, session_id=current.session_id, now=now))
    return current


async def authenticate_request_async(database: Database, *, token: str, kind: str) -> Authenticated:
    """:func:`authenticate_request` for the event loop: one statement, with no transaction
    around it; on SQLite it runs right there, with no worker thread (see
    :meth:`purse.db.Database.read_one_async`)."""
    settings = database.settings
    now = utc_now()
    row = await database.read_one_async(_LIVE, _token_of(token, kind))
    current, touch_due = _live(row, settings=settings, kind=kind, now=now)
    if touch_due:
        await database.run_async(lambda db: touch(db, session_id=current.session_id, now=now))
    return current


def refresh(
    db: DbSession,
    *,
    settings: Settings,
    refresh_token: str,
    actor: Actor,
    now: datetime | None = None,
) -> Issued | None:
    """New access and refresh tokens for an API session; the old ones stop working.

    Returns None for a token that is not live; the caller answers ``session_invalid``
    after the commit, so that ending a session whose old token came back is kept.
    """
    now = now or utc_now()
    presented = token_hash(refresh_token)
    session = db.scalars(select(Session).where(Session.refresh_hash == presented)).first()
    if session is None:
        reused = db.scalars(
            select(Session).where(Session.previous_refresh_hash == presented)
        ).first()
        if reused is not None and reused.ended_at is None:
            # A replaced refresh token came back: someone else holds a copy. End it all.
            _end(db, reused, reason="refresh_token_reused", actor=actor, now=now)
        return None
    user_status = db.scalar(select(User.status).where(User.id == session.user_id))
    if session.ended_at is not None or session.expires_at <= now or user_status != "active":
        return None
    token = _PREFIX["api"] + secrets.token_urlsafe(32)
    new_refresh = _REFRESH_PREFIX + secrets.token_urlsafe(32)
    session.previous_refresh_hash = presented
    session.refresh_hash = token_hash(new_refresh)
    session.token_hash = token_hash(token)
    session.token_expires_at = min(
        now + timedelta(seconds=settings.access_token_ttl_seconds), session.expires_at
    )
    session.last_seen_at = now
    return Issued(session.id, token, session.token_expires_at, new_refresh)


@dataclass(frozen=True, slots=True)
class SessionRead:
    id: int
    kind: str
    device: str
    address: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool


def list_sessions(
    db: DbSession, *, user_id: int, current_session_id: int | None
) -> list[SessionRead]:
    """The user's live sessions, most recently used first."""
    rows = db.scalars(
        select(Session)
        .where(Session.user_id == user_id, Session.ended_at.is_(None))
        .order_by(Session.last_seen_at.desc(), Session.id.desc())
    )
    return [
        SessionRead(
            row.id,
            row.kind,
            row.device,
            row.address,
            row.created_at,
            row.last_seen_at,
            row.id == current_session_id,
        )
        for row in rows
    ]


def end_session(
    db: DbSession,
    *,
    user_id: int,
    session_id: int,
    actor: Actor,
    reason: str = "signed_out",
    now: datetime | None = None,
) -> None:
    """End one of the user's own sessions; another person's is "not found"."""
    session = db.get(Session, session_id)
    if session is None or session.user_id != user_id or session.ended_at is not None:
        raise SessionNotFound()
    _end(db, session, reason=reason, actor=actor, now=now or utc_now())


def end_all_sessions(
    db: DbSession,
    *,
    user_id: int,
    actor: Actor,
    reason: str,
    except_session_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """End every live session of the user (but ``except_session_id``); returns how many."""
    now = now or utc_now()
    query = update(Session).where(Session.user_id == user_id, Session.ended_at.is_(None))
    if except_session_id is not None:
        query = query.where(Session.id != except_session_id)
    ended = db.execute(query.values(ended_at=now, end_reason=reason))
    count = int(getattr(ended, "rowcount", 0) or 0)
    record(
        db,
        kind="sessions_ended",
        actor=actor,
        subject_user_id=user_id,
        data={"count": count, "reason": reason, "kept": except_session_id},
        now=now,
    )
    return count


def _end(db: DbSession, session: Session, *, reason: str, actor: Actor, now: datetime) -> None:
    session.ended_at, session.end_reason = now, reason
    record(
        db,
        kind="session_ended",
        actor=actor,
        subject_user_id=session.user_id,
        data={"session_id": session.id, "reason": reason},
        now=now,
    )
