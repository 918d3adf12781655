"""The identity API as a client uses it: sign-up, verify, tokens, sessions; and its bad inputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from factories import make_settings
from purse.app import create_app
from purse.db import Database
from purse.notify.service import mailbox

PASSWORD = "river-lamp-quiet-74"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def app_database(database_url: str) -> Iterator[Database]:
    database = Database(make_settings(database_url))
    yield database
    database.dispose()


@pytest.fixture
def client(app_database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(app_database.settings, database=app_database)) as test_client:
        yield test_client


def codes_sent(client: TestClient, recipient: str) -> list[str]:
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    cipher = client.app.state.identity.cipher  # type: ignore[attr-defined]
    messages = database.run(lambda s: mailbox(s, cipher=cipher, recipient=recipient), write=False)
    return [str(m.data["code"]) for m in messages if "code" in m.data]


def sign_up(client: TestClient, **changes: Any) -> Any:
    body = {
        "handle": "wang_wei",
        "display_name": "Wang Wei",
        "password": PASSWORD,
        "locale": "zh-CN",
        "phone": "+8613800138000",
        "email": "wang.wei@example.com",
    }
    body.update(changes)
    return client.post("/v1/auth/signup", json={k: v for k, v in body.items() if v is not None})


def sign_in(
    client: TestClient,
    identifier: str = "wang_wei",
    password: str = PASSWORD,
    user_agent: str = IPHONE,
) -> Any:
    return client.post(
        "/v1/auth/token",
        json={"identifier": identifier, "password": password},
        headers={"User-Agent": user_agent},
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count_users(client: TestClient) -> int:
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    return int(
        database.run(lambda s: s.execute(text("SELECT COUNT(*) FROM identity_users")).scalar_one())
    )


def test_sign_up_verify_sign_in_and_me(client: TestClient) -> None:
    response = sign_up(client)
    assert response.status_code == 202
    assert response.json() == {"status": "verification_sent", "channels": ["sms", "email"]}
    code = codes_sent(client, "+8613800138000")[0]
    wrong = client.post(
        "/v1/auth/verify",
        json={
            "identifier": "+8613800138000",
            "channel": "sms",
            "code": "000000" if code != "000000" else "111111",
        },
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "code_invalid"
    ok = client.post(
        "/v1/auth/verify", json={"identifier": "+86 138 0013 8000", "channel": "sms", "code": code}
    )
    assert ok.status_code == 200 and ok.json() == {"status": "verified"}

    token = sign_in(client, identifier="wang.wei@example.com")
    assert token.status_code == 201, token.text
    pair = token.json()
    assert pair["token_type"] == "bearer" and pair["access_token"].startswith("pat_")
    me = client.get("/v1/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "id": me.json()["id"],
        "handle": "wang_wei",
        "display_name": "Wang Wei",
        "locale": "zh-CN",
        "role": "user",
        "phone_masked": "+86 138****8000",
        "email_masked": "w***i@example.com",
        "phone_verified": True,
        "email_verified": False,
        "two_factor": False,
    }
    templates = [m.template for m in messages_of(client)]
    assert (
        templates.count("new_device_sign_in") == 2
    )  # first sign-in from this device: SMS and email
    sign_in(client)
    again = [m.template for m in messages_of(client)]
    assert again.count("new_device_sign_in") == 2  # same device again: no new alert


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"password": "Qz7#kLp"}, 422, "password_too_short"),
        ({"password": "x" * 1025}, 422, "password_too_long"),
        ({"password": "password123"}, 422, "password_blocklisted"),
        ({"password": "wangwei2024"}, 422, "password_too_weak"),
        ({"handle": "1x"}, 422, "handle_invalid"),
        ({"phone": "13800138000"}, 422, "phone_invalid"),
        ({"email": "not-an-email"}, 422, "email_invalid"),
        ({"phone": None, "email": None}, 422, "contact_required"),
        ({"role": "admin"}, 422, "validation_failed"),  # no mass assignment
        ({"locale": "fr"}, 422, "validation_failed"),
    ],
)
def test_bad_sign_ups_change_nothing(
    client: TestClient, changes: dict[str, Any], status: int, code: str
) -> None:
    response = sign_up(client, **changes)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert count_users(client) == 0


def test_passwords_of_8_64_and_256_characters_are_accepted(client: TestClient) -> None:
    for index, password in enumerate(["Qz7#kLp9", "v9#Lq" * 12 + "abcd", "Lq9#" * 64]):
        response = sign_up(
            client,
            handle=f"user_{index}",
            phone=None,
            email=f"u{index}@example.com",
            password=password,
        )
        assert response.status_code == 202, (len(password), response.text)
        assert sign_in(client, identifier=f"user_{index}", password=password).status_code == 201
    assert count_users(client) == 3


def test_unknown_and_wrong_sign_ins_look_the_same(client: TestClient) -> None:
    sign_up(client)
    wrong = sign_in(client, password="not-the-password")
    unknown = sign_in(client, identifier="nobody_at_all")
    for response in (wrong, unknown):
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    strip = {"request_id", "instance"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }


def test_throttled_sign_in_says_when_to_retry(client: TestClient) -> None:
    sign_up(client)
    for _ in range(3):
        sign_in(client, password="not-the-password")
    throttled = sign_in(client, password="not-the-password")
    assert throttled.status_code == 429 and throttled.json()["code"] == "login_throttled"
    assert int(throttled.headers["retry-after"]) >= 1


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(client: TestClient) -> None:
    sign_up(client)
    first = sign_in(client).json()
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert (
        rotated["session_id"] == first["session_id"]
        and rotated["access_token"] != first["access_token"]
    )
    assert client.get("/v1/me", headers=bearer(first["access_token"])).status_code == 401
    assert client.get("/v1/me", headers=bearer(rotated["access_token"])).status_code == 200
    reused = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and reused.json()["code"] == "session_invalid"
    # Someone replayed an old refresh token: the whole session is over, new tokens included.
    assert client.get("/v1/me", headers=bearer(rotated["access_token"])).status_code == 401
    assert (
        client.post(
            "/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        ).status_code
        == 401
    )


def test_sessions_are_listed_ended_and_never_someone_elses(client: TestClient) -> None:
    sign_up(client)
    sign_up(client, handle="li_na", phone="+8613900139000", email="li.na@example.com")
    phone = sign_in(client).json()
    laptop = sign_in(client, user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0").json()
    other = sign_in(client, identifier="li_na").json()
    listed = client.get("/v1/me/sessions", headers=bearer(phone["access_token"])).json()
    assert [s["id"] for s in listed if s["current"]] == [phone["session_id"]]
    assert {s["id"] for s in listed} == {phone["session_id"], laptop["session_id"]}
    assert "Mobile Safari on iOS (iPhone)" in {s["device"] for s in listed}

    foreign = client.delete(
        f"/v1/me/sessions/{other['session_id']}", headers=bearer(phone["access_token"])
    )
    assert foreign.status_code == 404 and foreign.json()["code"] == "session_not_found"
    assert client.get("/v1/me", headers=bearer(other["access_token"])).status_code == 200

    ended = client.delete(
        f"/v1/me/sessions/{laptop['session_id']}", headers=bearer(phone["access_token"])
    )
    assert ended.status_code == 204
    assert (
        client.get("/v1/me", headers=bearer(laptop["access_token"])).status_code == 401
    )  # refused at once
    third = sign_in(client).json()
    assert client.post(
        "/v1/me/sessions/end-others", headers=bearer(phone["access_token"])
    ).json() == {"ended": 1}
    assert client.get("/v1/me", headers=bearer(third["access_token"])).status_code == 401
    assert client.post("/v1/auth/logout", headers=bearer(phone["access_token"])).status_code == 204
    assert client.get("/v1/me", headers=bearer(phone["access_token"])).status_code == 401


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer nonsense", "Basic abc", "Bearer pws_notapi"]
)
def test_protected_routes_refuse_missing_or_bad_tokens(
    client: TestClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "session_invalid"


def test_code_requests_answer_the_same_for_every_contact(client: TestClient) -> None:
    sign_up(client)
    known = client.post("/v1/auth/codes", json={"identifier": "+8613800138000", "channel": "sms"})
    unknown = client.post("/v1/auth/codes", json={"identifier": "+8613900139999", "channel": "sms"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json() == {"status": "sent_if_known"}
    unknown_verify = client.post(
        "/v1/auth/verify", json={"identifier": "+8613900139999", "channel": "sms", "code": "123456"}
    )
    assert unknown_verify.status_code == 422 and unknown_verify.json()["code"] == "code_invalid"


def test_password_reset_unlocks_ends_sessions_and_tells_the_user(app_database: Database) -> None:
    settings = make_settings(
        app_database.settings.database_url, login_failures_max=3, login_delay_after_failures=100
    )
    database = Database(settings)
    with TestClient(create_app(settings, database=database)) as client:
        sign_up(client)
        email_code = codes_sent(client, "wang.wei@example.com")[0]
        client.post(
            "/v1/auth/verify",
            json={"identifier": "wang.wei@example.com", "channel": "email", "code": email_code},
        )
        before = sign_in(client).json()
        for _ in range(3):
            sign_in(client, password="not-the-password")
        assert sign_in(client).status_code == 401  # locked, even with the right password

        # The phone was never verified: no reset code goes there, and the answer is the same.
        unverified = client.post(
            "/v1/auth/password-reset", json={"identifier": "+8613800138000", "channel": "sms"}
        )
        assert unverified.status_code == 202 and len(codes_sent(client, "+8613800138000")) == 1
        requested = client.post(
            "/v1/auth/password-reset",
            json={"identifier": "wang.wei@example.com", "channel": "email"},
        )
        assert requested.status_code == 202 and requested.json() == {"status": "sent_if_known"}
        code = codes_sent(client, "wang.wei@example.com")[0]
        assert code != email_code

        def confirm(new_password: str, with_code: str = code) -> Any:
            return client.post(
                "/v1/auth/password-reset/confirm",
                json={
                    "identifier": "wang.wei@example.com",
                    "channel": "email",
                    "code": with_code,
                    "new_password": new_password,
                },
            )

        weak = confirm("wangwei12345")
        assert weak.status_code == 422 and weak.json()["code"] == "password_too_weak"
        wrong = confirm(
            "harbor-velvet-quiet-93", with_code="000000" if code != "000000" else "111111"
        )
        assert wrong.status_code == 422 and wrong.json()["code"] == "code_invalid"
        done = confirm("harbor-velvet-quiet-93")  # the weak try did not use the code up
        assert done.status_code == 200 and done.json() == {"status": "password_changed"}
        assert confirm("another-fine-password-7").json()["code"] == "code_invalid"  # single use

        assert client.get("/v1/me", headers=bearer(before["access_token"])).status_code == 401
        assert sign_in(client).status_code == 401  # the old password is gone
        assert sign_in(client, password="harbor-velvet-quiet-93").status_code == 201  # and unlocked
        messages = database.run(
            lambda s: mailbox(s, cipher=client.app.state.identity.cipher),  # type: ignore[attr-defined]
            write=False,
        )
        assert sum(m.template == "password_changed" for m in messages) == 2  # SMS and email
    database.dispose()


def enable_totp(client: TestClient, access_token: str) -> tuple[str, str, list[str]]:
    """Turn 2FA on; returns the secret, the code that confirmed it, and the recovery codes."""
    import pyotp

    enrolment = client.post("/v1/me/2fa/totp", headers=bearer(access_token))
    assert enrolment.status_code == 200, enrolment.text
    body = enrolment.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/purse:wang_wei?")
    assert body["qr_svg"].startswith("<svg") and len(body["secret"]) == 32
    wrong = client.post(
        "/v1/me/2fa/totp/confirm", headers=bearer(access_token), json={"code": "000000"}
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "code_invalid"
    first_code = pyotp.TOTP(body["secret"]).now()
    confirmed = client.post(
        "/v1/me/2fa/totp/confirm", headers=bearer(access_token), json={"code": first_code}
    )
    assert confirmed.status_code == 200, confirmed.text
    return body["secret"], first_code, confirmed.json()["recovery_codes"]


def test_two_factor_sign_in_with_totp_replay_refused_and_recovery_codes(client: TestClient) -> None:
    sign_up(client)
    first = sign_in(client).json()
    _, first_code, recovery = enable_totp(client, first["access_token"])
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in recovery)  # 80 bits each

    needs = sign_in(client)
    assert needs.status_code == 401 and needs.json()["code"] == "second_factor_required"
    # The code that confirmed enrolment was used: it cannot sign in (its step is spent).
    replay = client.post(
        "/v1/auth/token",
        json={
            "identifier": "wang_wei",
            "password": PASSWORD,
            "second_factor": first_code,
        },
    )
    assert replay.status_code == 401 and replay.json()["code"] == "second_factor_invalid"
    with_recovery = client.post(
        "/v1/auth/token",
        json={"identifier": "wang_wei", "password": PASSWORD, "second_factor": recovery[0].upper()},
    )
    assert with_recovery.status_code == 201
    reused = client.post(
        "/v1/auth/token",
        json={"identifier": "wang_wei", "password": PASSWORD, "second_factor": recovery[0]},
    )
    assert reused.status_code == 401 and reused.json()["code"] == "second_factor_invalid"

    token = with_recovery.json()["access_token"]
    fresh = client.post("/v1/me/2fa/recovery-codes", headers=bearer(token)).json()["recovery_codes"]
    stale = client.post(
        "/v1/auth/token",
        json={"identifier": "wang_wei", "password": PASSWORD, "second_factor": recovery[1]},
    )
    assert stale.status_code == 401  # regenerating retired the old codes
    assert client.delete("/v1/me/2fa/totp", headers=bearer(token)).status_code == 204
    assert sign_in(client).status_code == 201  # 2FA off: the password alone signs in again
    assert (
        fresh
        and client.delete("/v1/me/2fa/totp", headers=bearer(token)).json()["code"]
        == "totp_not_enabled"
    )


def test_password_reset_never_bypasses_two_factor(client: TestClient) -> None:
    sign_up(client)
    email_code = codes_sent(client, "wang.wei@example.com")[0]
    client.post(
        "/v1/auth/verify",
        json={"identifier": "wang.wei@example.com", "channel": "email", "code": email_code},
    )
    _, _, recovery = enable_totp(client, sign_in(client).json()["access_token"])
    client.post(
        "/v1/auth/password-reset", json={"identifier": "wang.wei@example.com", "channel": "email"}
    )
    code = codes_sent(client, "wang.wei@example.com")[0]
    body = {
        "identifier": "wang.wei@example.com",
        "channel": "email",
        "code": code,
        "new_password": "harbor-velvet-quiet-93",
    }
    missing = client.post("/v1/auth/password-reset/confirm", json=body)
    assert missing.status_code == 401 and missing.json()["code"] == "second_factor_required"
    done = client.post(
        "/v1/auth/password-reset/confirm", json={**body, "second_factor": recovery[0]}
    )
    assert done.status_code == 200, done.text
    assert (
        client.post(
            "/v1/auth/token",
            json={
                "identifier": "wang_wei",
                "password": "harbor-velvet-quiet-93",
                "second_factor": recovery[1],
            },
        ).status_code
        == 201
    )


def test_sensitive_actions_need_a_recent_step_up(app_database: Database) -> None:
    settings = make_settings(app_database.settings.database_url, step_up_max_age_seconds=-1)
    database = Database(settings)
    with TestClient(create_app(settings, database=database)) as client:
        sign_up(client)
        token = sign_in(client).json()["access_token"]
        refused = client.post("/v1/me/2fa/totp", headers=bearer(token))
        assert refused.status_code == 403 and refused.json()["code"] == "step_up_required"
        wrong = client.post(
            "/v1/auth/step-up", headers=bearer(token), json={"password": "nope-nope-nope"}
        )
        assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
        ok = client.post("/v1/auth/step-up", headers=bearer(token), json={"password": PASSWORD})
        assert ok.status_code == 200 and ok.json() == {"status": "confirmed"}
    database.dispose()


def test_only_admins_change_roles_and_refusals_are_audited(client: TestClient) -> None:
    from purse.audit.service import Actor
    from purse.identity.signup import create_verified_user

    database: Database = client.app.state.database  # type: ignore[attr-defined]
    identity = client.app.state.identity  # type: ignore[attr-defined]
    database.run(
        lambda s: create_verified_user(
            s,
            identity=identity,
            handle="boss_admin",
            display_name="Boss",
            password="granite-meadow-lantern-5",
            role="admin",
            locale="en",
            actor=Actor(kind="operator", id="test"),
            email="boss@example.com",
        )
    )
    sign_up(client)
    user_token = sign_in(client).json()["access_token"]
    admin_token = sign_in(
        client, identifier="boss_admin", password="granite-meadow-lantern-5"
    ).json()["access_token"]
    user_id = client.get("/v1/me", headers=bearer(user_token)).json()["id"]

    denied = client.put(
        f"/v1/admin/users/{user_id}/role", headers=bearer(user_token), json={"role": "admin"}
    )
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert client.get("/v1/me", headers=bearer(user_token)).json()["role"] == "user"
    events = database.run(
        lambda s: list(
            s.execute(
                text(
                    "SELECT kind FROM audit_events"
                    " WHERE kind IN ('permission_denied', 'role_changed') ORDER BY id"
                )
            ).scalars()
        )
    )
    assert events == ["role_changed", "permission_denied"]  # the admin's creation, then the refusal

    assert client.put(f"/v1/admin/users/{user_id}/role", json={"role": "agent"}).status_code == 401
    bad = client.put(
        f"/v1/admin/users/{user_id}/role", headers=bearer(admin_token), json={"role": "king"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
    missing = client.put(
        "/v1/admin/users/999999/role", headers=bearer(admin_token), json={"role": "agent"}
    )
    assert missing.status_code == 404 and missing.json()["code"] == "user_not_found"
    ok = client.put(
        f"/v1/admin/users/{user_id}/role", headers=bearer(admin_token), json={"role": "agent"}
    )
    assert ok.status_code == 200
    assert client.get("/v1/me", headers=bearer(user_token)).json()["role"] == "agent"


def test_password_change_needs_step_up_and_signs_out_other_devices(app_database: Database) -> None:
    url = app_database.settings.database_url
    strict = make_settings(url, step_up_max_age_seconds=-1)
    relaxed = make_settings(url, step_up_max_age_seconds=-1, step_up_actions="two_factor")
    normal = make_settings(url)
    for settings in (strict, relaxed, normal):
        database = Database(settings)
        with TestClient(create_app(settings, database=database)) as client:
            if settings is strict:
                sign_up(client)
                token = sign_in(client).json()["access_token"]
                refused = client.post(
                    "/v1/me/password",
                    headers=bearer(token),
                    json={"new_password": "orbit-candle-meadow-12"},
                )
                assert refused.status_code == 403 and refused.json()["code"] == "step_up_required"
            elif settings is relaxed:  # an operator took change_password off the list
                token = sign_in(client).json()["access_token"]
                weak = client.post(
                    "/v1/me/password", headers=bearer(token), json={"new_password": "wangwei1"}
                )
                assert weak.status_code == 422 and weak.json()["code"] in {
                    "password_too_weak",
                    "password_blocklisted",
                }
                assert sign_in(client).status_code == 201  # nothing changed
            else:
                phone = sign_in(client).json()["access_token"]
                laptop = sign_in(
                    client, user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
                ).json()["access_token"]
                changed = client.post(
                    "/v1/me/password",
                    headers=bearer(phone),
                    json={"new_password": "orbit-candle-meadow-12"},
                )
                assert changed.status_code == 200, changed.text
                assert (
                    client.get("/v1/me", headers=bearer(phone)).status_code == 200
                )  # this device stays
                assert (
                    client.get("/v1/me", headers=bearer(laptop)).status_code == 401
                )  # others are out
                assert sign_in(client).status_code == 401
                assert sign_in(client, password="orbit-candle-meadow-12").status_code == 201
        database.dispose()


def test_changing_email_confirms_the_new_one_and_tells_the_old(client: TestClient) -> None:
    sign_up(client)
    sign_up(client, handle="li_na", phone="+8613900139000", email="li.na@example.com")
    token = sign_in(client).json()["access_token"]
    headers = bearer(token)
    bad = client.post(
        "/v1/me/contact", headers=headers, json={"channel": "email", "value": "not-an-email"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "email_invalid"
    taken = client.post(
        "/v1/me/contact", headers=headers, json={"channel": "email", "value": "li.na@example.com"}
    )
    fresh = client.post(
        "/v1/me/contact", headers=headers, json={"channel": "email", "value": "WW@Example.com"}
    )
    assert taken.status_code == fresh.status_code == 202 and taken.json() == fresh.json()
    assert (
        codes_sent(client, "li.na@example.com") == codes_sent(client, "li.na@example.com")[:1]
    )  # no new code
    code = codes_sent(client, "ww@example.com")[0]
    wrong = client.post(
        "/v1/me/contact/confirm",
        headers=headers,
        json={"channel": "email", "code": "000000" if code != "000000" else "111111"},
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "code_invalid"
    done = client.post(
        "/v1/me/contact/confirm", headers=headers, json={"channel": "email", "code": code}
    )
    assert done.status_code == 200, done.text
    me = client.get("/v1/me", headers=headers).json()
    assert me["email_masked"] == "w***w@example.com" and me["email_verified"] is True
    assert sign_in(client, identifier="ww@example.com").status_code == 201
    assert sign_in(client, identifier="wang.wei@example.com").status_code == 401
    database: Database = client.app.state.database  # type: ignore[attr-defined]
    told = database.run(
        lambda s: mailbox(
            s,
            cipher=client.app.state.identity.cipher,  # type: ignore[attr-defined]
            recipient="wang.wei@example.com",
        ),
        write=False,
    )
    assert "contact_changed_email" in {m.template for m in told}
    owner = database.run(
        lambda s: mailbox(
            s,
            cipher=client.app.state.identity.cipher,  # type: ignore[attr-defined]
            recipient="li.na@example.com",
        ),
        write=False,
    )
    assert "contact_change_attempt" in {m.template for m in owner}


def messages_of(client: TestClient) -> list[Any]:
    """What the development mailbox holds, through the app's own database."""
    app = client.app
    assert isinstance(app, FastAPI)
    database = app.state.database
    cipher = app.state.identity.cipher
    return list(database.run(lambda s: mailbox(s, cipher=cipher), write=False))
