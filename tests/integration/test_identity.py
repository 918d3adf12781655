"""Identity use cases on SQLite and PostgreSQL: sign-up, codes, login throttling, lockout, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from factories import make_settings
from purse.audit.service import Actor, record, verify_audit
from purse.db import Database
from purse.identity import codes as identity_codes
from purse.identity import errors
from purse.identity import signin as identity_signin
from purse.identity import signup as identity_signup
from purse.identity.context import Identity, Outcome
from purse.identity.models import User
from purse.notify.service import mailbox

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ACTOR = Actor(kind="anonymous", address="127.0.0.1", request_id="req-1")
PASSWORD = "river-lamp-quiet-74"


@pytest.fixture
def identity(database: Database) -> Identity:
    return Identity(database.settings)


def sign_up(
    database: Database,
    identity: Identity,
    *,
    handle: str = "wangwei",
    phone: str | None = "+8613800138000",
    email: str | None = "wang.wei@example.com",
    now: datetime = NOW,
) -> int | None:
    return database.run(
        lambda s: identity_signup.sign_up(
            s,
            identity=identity,
            handle=handle,
            display_name="Wang Wei",
            password=PASSWORD,
            locale="zh-CN",
            actor=ACTOR,
            phone=phone,
            email=email,
            now=now,
        )
    ).user_id


def latest_code(database: Database, identity: Identity, recipient: str) -> str:
    messages = database.run(
        lambda s: mailbox(s, cipher=identity.cipher, recipient=recipient), write=False
    )
    return str(next(m.data["code"] for m in messages if "code" in m.data))


def attempt(
    database: Database,
    identity: Identity,
    identifier: str,
    password: str,
    now: datetime,
    address: str = "127.0.0.1",
) -> Outcome:
    actor = Actor(kind="anonymous", address=address)
    return database.run(
        lambda s: identity_signin.login(
            s, identity=identity, identifier=identifier, password=password, actor=actor, now=now
        )
    )


def test_sign_up_stores_contacts_encrypted_and_sends_codes(
    database: Database, identity: Identity
) -> None:
    user_id = sign_up(database, identity)
    assert user_id is not None
    with database.transaction(write=False) as session:
        raw = " ".join(str(v) for v in session.execute(text("SELECT * FROM identity_users")).one())
        outbox = " ".join(
            str(v) for row in session.execute(text("SELECT * FROM notify_outbox")) for v in row
        )
        codes = " ".join(
            str(v) for row in session.execute(text("SELECT * FROM identity_codes")) for v in row
        )
    assert "13800138000" not in raw and "wang.wei" not in raw and PASSWORD not in raw
    sms_code = latest_code(database, identity, "+8613800138000")
    email_code = latest_code(database, identity, "wang.wei@example.com")
    assert len(sms_code) == 6 and sms_code.isdigit()
    assert (
        sms_code not in codes and sms_code not in outbox
    )  # codes are hashed, the outbox encrypted
    outcome = database.run(
        lambda s: identity_signup.verify_contact(
            s,
            identity=identity,
            user_id=user_id,
            channel="sms",
            code=sms_code,
            actor=ACTOR,
            now=NOW,
        )
    )
    assert outcome.raise_for_error() == user_id
    again = database.run(
        lambda s: identity_signup.verify_contact(
            s,
            identity=identity,
            user_id=user_id,
            channel="sms",
            code=sms_code,
            actor=ACTOR,
            now=NOW,
        )
    )
    assert isinstance(again.error, errors.CodeInvalid)  # single use
    late = database.run(
        lambda s: identity_signup.verify_contact(
            s,
            identity=identity,
            user_id=user_id,
            channel="email",
            code=email_code,
            actor=ACTOR,
            now=NOW + timedelta(minutes=10),
        )
    )
    assert isinstance(late.error, errors.CodeInvalid)  # valid 10 minutes


def test_bad_sign_ups(database: Database, identity: Identity) -> None:
    with pytest.raises(errors.ContactRequired):
        sign_up(database, identity, phone=None, email=None)
    with pytest.raises(errors.PhoneInvalid):
        sign_up(database, identity, phone="13800138000")
    assert sign_up(database, identity) is not None
    with pytest.raises(errors.HandleTaken):
        sign_up(database, identity, phone="+8613900139000", email=None)
    # The same email again: answered like a success, no second account, the owner is told.
    assert sign_up(database, identity, handle="someone_else", phone=None) is None
    templates = [
        m.template for m in database.run(lambda s: mailbox(s, cipher=identity.cipher), write=False)
    ]
    assert "signup_attempt_on_your_contact" in templates
    count = database.run(
        lambda s: s.execute(text("SELECT COUNT(*) FROM identity_users")).scalar_one()
    )
    assert count == 1


def test_five_wrong_codes_then_nothing_and_a_new_code_keeps_the_count(
    database: Database, identity: Identity
) -> None:
    user_id = sign_up(database, identity, email=None)
    assert user_id is not None
    right = latest_code(database, identity, "+8613800138000")
    wrong = f"{(int(right) + 1) % 10**6:06d}"

    def verify(code: str, now: datetime = NOW) -> Outcome:
        return database.run(
            lambda s: identity_signup.verify_contact(
                s,
                identity=identity,
                user_id=user_id,
                channel="sms",
                code=code,
                actor=ACTOR,
                now=now,
            )
        )

    results = [verify(wrong).error for _ in range(4)]
    assert all(isinstance(e, errors.CodeInvalid) for e in results)
    assert isinstance(verify(wrong).error, errors.CodeAttemptsExceeded)  # the 5th wrong try
    assert isinstance(
        verify(right).error, errors.CodeAttemptsExceeded
    )  # a 6th try, even right, fails
    with pytest.raises(errors.CodeSendThrottled):
        database.run(
            lambda s: identity_codes.send_code(
                s,
                identity=identity,
                user=s.get_one(User, user_id),
                purpose="verify_sms",
                channel="sms",
                now=NOW + timedelta(seconds=30),
            )
        )
    database.run(
        lambda s: identity_codes.send_code(
            s,
            identity=identity,
            user=s.get_one(User, user_id),
            purpose="verify_sms",
            channel="sms",
            now=NOW + timedelta(seconds=61),
        )
    )
    fresh = latest_code(database, identity, "+8613800138000")
    # The new code took over the exhausted count: no new tries before the old one would expire.
    assert isinstance(verify(fresh, NOW + timedelta(seconds=62)).error, errors.CodeAttemptsExceeded)


def test_login_by_any_identifier_and_unknown_users_answered_alike(
    database: Database, identity: Identity
) -> None:
    user_id = sign_up(database, identity)
    for identifier in ["wangwei", "@WangWei", "+86 138 0013 8000", "Wang.Wei@example.com"]:
        assert attempt(database, identity, identifier, PASSWORD, NOW).raise_for_error() == user_id
    wrong = attempt(database, identity, "wangwei", "not-the-password", NOW)
    unknown = attempt(database, identity, "nobody_here", PASSWORD, NOW)
    malformed = attempt(database, identity, "+1 000", PASSWORD, NOW)
    assert (
        type(wrong.error)
        is type(unknown.error)
        is type(malformed.error)
        is errors.InvalidCredentials
    )
    assert (
        wrong.error and unknown.error and wrong.error.message("en") == unknown.error.message("en")
    )


def test_growing_delays_then_lockout_then_unlock_after_the_timeout(
    database: Database, identity: Identity
) -> None:
    sign_up(database, identity)
    now = NOW
    for failure in range(1, 11):
        outcome = attempt(database, identity, "wangwei", "wrong-password-x", now)
        assert isinstance(outcome.error, errors.InvalidCredentials), failure
        if failure >= 3 and failure < 10:
            too_soon = attempt(database, identity, "wangwei", "wrong-password-x", now)
            assert isinstance(too_soon.error, errors.LoginThrottled)
            assert too_soon.error.data["retry_after_seconds"] >= 1
        now += timedelta(seconds=300)
    locked = attempt(database, identity, "wangwei", PASSWORD, now)
    assert isinstance(
        locked.error, errors.InvalidCredentials
    )  # the right password does not open it
    templates = [
        m.template for m in database.run(lambda s: mailbox(s, cipher=identity.cipher), write=False)
    ]
    assert templates.count("account_locked") == 2  # SMS and email
    after = now + timedelta(seconds=identity.settings.login_lockout_seconds)
    assert attempt(database, identity, "wangwei", PASSWORD, after).error is None


def test_unknown_identifiers_get_the_same_delays(database: Database, identity: Identity) -> None:
    for _ in range(3):
        attempt(database, identity, "ghost_user", "whatever-123", NOW)
    assert isinstance(
        attempt(database, identity, "ghost_user", "whatever-123", NOW).error, errors.LoginThrottled
    )


def test_one_address_is_throttled_across_accounts(database_url: str) -> None:
    database = Database(make_settings(database_url, address_failures_max=5))
    identity = Identity(database.settings)
    for index in range(5):
        attempt(database, identity, f"user_{index}", "pw-wrong-123", NOW, address="10.9.8.7")
    blocked = attempt(database, identity, "user_9", "pw-wrong-123", NOW, address="10.9.8.7")
    assert isinstance(blocked.error, errors.LoginThrottled)
    other = attempt(database, identity, "user_9", "pw-wrong-123", NOW, address="10.9.8.6")
    assert isinstance(other.error, errors.InvalidCredentials)
    database.dispose()


def test_lockout_holds_across_two_app_instances(database_url: str) -> None:
    """Two processes' worth of engines on one database share the failure count."""
    first = Database(make_settings(database_url))
    second = Database(make_settings(database_url))
    identity_a, identity_b = Identity(first.settings), Identity(second.settings)
    sign_up(first, identity_a)
    now = NOW
    for failure in range(10):
        database, identity = (first, identity_a) if failure % 2 else (second, identity_b)
        attempt(database, identity, "wangwei", "wrong-password-x", now)
        now += timedelta(seconds=300)
    assert isinstance(
        attempt(first, identity_a, "wangwei", PASSWORD, now).error, errors.InvalidCredentials
    )
    assert isinstance(
        attempt(second, identity_b, "wangwei", PASSWORD, now).error, errors.InvalidCredentials
    )
    first.dispose()
    second.dispose()


def test_audit_log_is_chained_and_keeps_no_secrets(database: Database, identity: Identity) -> None:
    sign_up(database, identity)
    attempt(database, identity, "wangwei", "wrong-password-x", NOW)
    attempt(database, identity, "wangwei", PASSWORD, NOW + timedelta(seconds=5))
    kinds = database.run(
        lambda s: list(s.execute(text("SELECT kind FROM audit_events ORDER BY id")).scalars())
    )
    assert kinds == ["signup", "login_failed", "login_succeeded"]
    dump = database.run(
        lambda s: " ".join(
            str(v) for row in s.execute(text("SELECT * FROM audit_events")) for v in row
        )
    )
    assert PASSWORD not in dump and "wrong-password-x" not in dump and "13800138000" not in dump
    assert database.run(lambda s: verify_audit(s), write=False).ok
    with pytest.raises(AssertionError, match="secrets"):
        database.run(lambda s: record(s, kind="x", actor=ACTOR, data={"reset_code": "123456"}))
    database.run(lambda s: s.execute(text("UPDATE audit_events SET kind = 'nothing' WHERE id = 2")))
    report = database.run(lambda s: verify_audit(s), write=False)
    assert report.problems == ["audit event 2 was changed after it was written"]


def test_an_expired_lock_starts_afresh(database: Database, identity: Identity) -> None:
    sign_up(database, identity)
    now = NOW
    for _ in range(10):
        attempt(database, identity, "wangwei", "wrong-password-x", now)
        now += timedelta(seconds=300)
    after = now + timedelta(seconds=identity.settings.login_lockout_seconds)
    one_mistake = attempt(database, identity, "wangwei", "wrong-password-x", after)
    assert isinstance(one_mistake.error, errors.InvalidCredentials)
    # One mistake after the lock ran out does not lock the account again.
    assert (
        attempt(database, identity, "wangwei", PASSWORD, after + timedelta(seconds=1)).error is None
    )
