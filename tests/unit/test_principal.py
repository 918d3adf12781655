"""Who acts and how they proved it: the principal, its initiator, and the one step-up policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from factories import make_settings
from purse.identity.errors import PermissionDenied, StepUpRequired
from purse.identity.principal import Principal, PrincipalKind
from purse.identity.rules import step_up_needed
from purse.identity.sessions import Authenticated

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SETTINGS = make_settings("sqlite://", step_up_max_age_seconds=300)


def session(kind: str = "web", *, method: str = "password+totp", age: int = 0) -> Authenticated:
    signed_in = NOW - timedelta(seconds=age)
    return Authenticated(
        session_id=12,
        user_id=7,
        role="user",
        kind=kind,
        authenticated_at=signed_in,
        device="Chrome|Android|Pixel 8",
        auth_method=method,
        created_at=signed_in,
    )


def test_a_session_names_its_channel_and_factors_on_every_transfer() -> None:
    web = Principal.of_session(session("web"))
    assert web.initiator(settings=SETTINGS, now=NOW).kind == "user_session"
    assert web.initiator(settings=SETTINGS, now=NOW).id == "session:12"
    assert web.authenticated_by(settings=SETTINGS, now=NOW) == "web_session+password+totp"
    api = Principal.of_session(session("api", method="password"))
    assert api.authenticated_by(settings=SETTINGS, now=NOW) == "access_token+password"
    assert (web.device, web.wallet_user_id) == ("Chrome|Android|Pixel 8", 7)


def test_a_recent_step_up_is_named_and_an_old_one_is_not() -> None:
    signed_in_an_hour_ago = session(age=3600)
    stepped = replace(signed_in_an_hour_ago, authenticated_at=NOW - timedelta(seconds=60))
    stale = replace(signed_in_an_hour_ago, authenticated_at=NOW - timedelta(seconds=301))
    assert Principal.of_session(stepped).authenticated_by(settings=SETTINGS, now=NOW) == (
        "web_session+password+totp+step_up"
    )
    assert Principal.of_session(stale).authenticated_by(settings=SETTINGS, now=NOW) == (
        "web_session+password+totp"
    )
    assert not Principal.of_session(signed_in_an_hour_ago).stepped_up(settings=SETTINGS, now=NOW)


def test_the_demo_and_jobs_say_what_they_are() -> None:
    demo = Principal.demo(3)
    assert demo.initiator(settings=SETTINGS, now=NOW).kind == "demo"
    assert demo.authenticated_by(settings=SETTINGS, now=NOW) == "demo_seeder"
    assert demo.wallet_user_id == 3
    job = Principal.system("expire_holds")
    assert (job.kind, job.id) == (PrincipalKind.system, "job:expire_holds")
    with pytest.raises(PermissionDenied):
        _ = job.wallet_user_id  # a job has no wallet of its own to move money from


def test_step_up_is_one_policy() -> None:
    fresh, old = session(age=10), session(age=3600)
    actions = SETTINGS.step_up_actions
    assert "large_transfer" in actions
    assert not Principal.of_session(fresh).needs_step_up("two_factor", settings=SETTINGS, now=NOW)
    assert Principal.of_session(old).needs_step_up("two_factor", settings=SETTINGS, now=NOW)
    assert not Principal.of_session(old).needs_step_up("unlisted", settings=SETTINGS, now=NOW)
    with pytest.raises(StepUpRequired):
        Principal.of_session(old).require_step_up("two_factor", settings=SETTINGS, now=NOW)
    # Jobs and the demo never confirm a password.
    assert not Principal.demo(1).needs_step_up("two_factor", settings=SETTINGS, now=NOW)
    assert step_up_needed(
        action="x",
        actions=["x"],
        authenticated_at=NOW - timedelta(seconds=301),
        max_age_seconds=300,
        now=NOW,
    )
    assert not step_up_needed(
        action="x",
        actions=["x"],
        authenticated_at=NOW - timedelta(seconds=300),
        max_age_seconds=300,
        now=NOW,
    )
