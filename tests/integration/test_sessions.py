"""Session lifetimes on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from purse.audit.service import Actor
from purse.db import Database
from purse.identity import sessions
from purse.identity import signup as identity_signup
from purse.identity.context import Identity
from purse.identity.errors import SessionInvalid
from purse.identity.models import Session
from purse.models import utc_now

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor(kind="anonymous", address="127.0.0.1")


def make_user(database: Database) -> int:
    identity = Identity(database.settings)
    result = database.run(
        lambda s: identity_signup.sign_up(
            s,
            identity=identity,
            handle="zhao_lei",
            display_name="Zhao Lei",
            password="amber-kite-mellow-58",
            locale="zh-CN",
            actor=ACTOR,
            email="zhao.lei@example.com",
            now=NOW,
        )
    )
    assert result.user_id is not None
    return result.user_id


def start(database: Database, user_id: int, kind: str) -> sessions.Issued:
    return database.run(
        lambda s: sessions.start_session(
            s,
            settings=database.settings,
            user_id=user_id,
            kind=kind,
            user_agent="curl/8.5.0",
            actor=ACTOR,
            now=NOW,
        )
    )[0]


def check(database: Database, token: str, kind: str, at: datetime) -> sessions.Authenticated:
    return database.run(
        lambda s: sessions.authenticate(
            s, settings=database.settings, token=token, kind=kind, now=at
        )
    )


def test_web_session_idle_timeout_and_absolute_lifetime(database: Database) -> None:
    user_id = make_user(database)
    issued = start(database, user_id, "web")
    settings = database.settings
    idle = timedelta(seconds=settings.web_session_idle_seconds)
    # Used every 20 minutes, it lives on until its absolute lifetime ends.
    at = NOW
    while at + timedelta(minutes=20) < NOW + timedelta(
        seconds=settings.web_session_lifetime_seconds
    ):
        at += timedelta(minutes=20)
        assert check(database, issued.token, "web", at).user_id == user_id
    with pytest.raises(SessionInvalid):
        check(
            database,
            issued.token,
            "web",
            NOW + timedelta(seconds=settings.web_session_lifetime_seconds),
        )
    idle_one = start(database, user_id, "web")
    with pytest.raises(SessionInvalid):
        check(database, idle_one.token, "web", NOW + idle)
    with pytest.raises(SessionInvalid):  # a web token is not an API token
        check(database, idle_one.token, "api", NOW)


def test_access_tokens_expire_and_disabled_users_are_refused(database: Database) -> None:
    user_id = make_user(database)
    issued = start(database, user_id, "api")
    ttl = timedelta(seconds=database.settings.access_token_ttl_seconds)
    assert (
        check(database, issued.token, "api", NOW + ttl - timedelta(seconds=1)).session_id
        == issued.session_id
    )
    with pytest.raises(SessionInvalid):
        check(database, issued.token, "api", NOW + ttl)
    fresh = database.run(
        lambda s: sessions.refresh(
            s,
            settings=database.settings,
            refresh_token=issued.refresh_token or "",
            actor=ACTOR,
            now=NOW + ttl,
        )
    )
    assert fresh is not None
    database.run(
        lambda s: s.execute(
            text("UPDATE identity_users SET status = 'disabled' WHERE id = :id"), {"id": user_id}
        )
    )
    with pytest.raises(SessionInvalid):
        check(database, fresh.token, "api", NOW + ttl)
    refused = database.run(
        lambda s: sessions.refresh(
            s,
            settings=database.settings,
            refresh_token=fresh.refresh_token or "",
            actor=ACTOR,
            now=NOW + ttl,
        )
    )
    assert refused is None  # a disabled user cannot refresh either


def test_tokens_are_stored_only_as_hashes(database: Database) -> None:
    user_id = make_user(database)
    issued = start(database, user_id, "api")
    dump = database.run(
        lambda s: " ".join(
            str(v) for row in s.execute(text("SELECT * FROM identity_sessions")) for v in row
        )
    )
    assert issued.token not in dump and (issued.refresh_token or "x") not in dump
    assert sessions.token_hash(issued.token) in dump


def test_a_request_records_the_use_only_when_it_is_due(database: Database) -> None:
    """A request reads its session in a read transaction; the use is written at most once
    per ``session_touch_interval_seconds``, so a web session stays alive while it is used."""
    user_id = make_user(database)
    started = utc_now() - timedelta(minutes=5)
    issued = database.run(
        lambda s: sessions.start_session(
            s,
            settings=database.settings,
            user_id=user_id,
            kind="web",
            user_agent="curl/8.5.0",
            actor=ACTOR,
            now=started,
        )
    )[0]

    def last_seen() -> datetime:
        return database.run(
            lambda s: s.scalars(
                select(Session.last_seen_at).where(Session.id == issued.session_id)
            ).one(),
            write=False,
        )

    before = last_seen()
    current = sessions.authenticate_request(database, token=issued.token, kind="web")
    assert current.session_id == issued.session_id
    touched = last_seen()
    assert touched != before  # five minutes after the last use: due, recorded
    sessions.authenticate_request(database, token=issued.token, kind="web")
    assert last_seen() == touched  # a second later: not due, nothing written
