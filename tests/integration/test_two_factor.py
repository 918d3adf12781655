"""TOTP codes at exact times: one use per time step, one step of drift, nothing older."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp

from purse.audit.service import Actor
from purse.db import Database
from purse.identity import signup as identity_signup
from purse.identity import twofactor
from purse.identity.context import Identity
from purse.identity.models import User

NOW = datetime(2026, 7, 1, 10, 0, 5, tzinfo=UTC)
ACTOR = Actor(kind="user", id="1")


def code_at(secret: str, when: datetime) -> str:
    return str(pyotp.TOTP(secret).at(when))


def test_totp_codes_work_once_within_one_step_of_drift(database: Database) -> None:
    identity = Identity(database.settings)
    user_id = database.run(
        lambda s: identity_signup.sign_up(
            s,
            identity=identity,
            handle="sun_li",
            display_name="Sun Li",
            password="cobalt-ferry-night-42",
            locale="en",
            actor=ACTOR,
            email="sun.li@example.com",
            now=NOW,
        )
    ).user_id
    assert user_id is not None
    enrolment = database.run(
        lambda s: twofactor.begin_totp(s, identity=identity, user_id=user_id, actor=ACTOR)
    )
    secret = enrolment.secret
    codes = database.run(
        lambda s: twofactor.confirm_totp(
            s, identity=identity, user_id=user_id, code=code_at(secret, NOW), actor=ACTOR, now=NOW
        )
    )
    assert codes is not None

    def check(code: str, when: datetime) -> str | None:
        return database.run(
            lambda s: twofactor.check_second_factor(
                s,
                identity=identity,
                user=s.get_one(User, user_id),
                code=code,
                actor=ACTOR,
                now=when,
            )
        )

    assert not check(code_at(secret, NOW), NOW)  # used to confirm: not again in the same step
    later = NOW + timedelta(seconds=30)
    assert check(code_at(secret, later), later) == "totp"
    assert not check(code_at(secret, later), later + timedelta(seconds=5))  # replay
    drifted = NOW + timedelta(seconds=90)
    assert check(
        code_at(secret, drifted + timedelta(seconds=30)), drifted
    )  # the phone runs 30 s ahead
    assert not check(
        code_at(secret, drifted - timedelta(seconds=60)), drifted + timedelta(seconds=60)
    )
    assert not check("12345", drifted) and not check("abcdef", drifted)
    stored = database.run(lambda s: s.get_one(User, user_id).totp_secret_encrypted, write=False)
    assert stored is not None and secret not in stored
