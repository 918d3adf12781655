"""Browser-facing rules without a browser: CSRF, cookie flags, CSP, no state change on GET."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from factories import make_settings
from purse.app import create_app
from purse.audit.service import Actor
from purse.db import Database
from purse.identity.context import Identity
from purse.identity.signup import create_verified_user

PASSWORD = "river-lamp-quiet-74"
TABLES = [
    "identity_users",
    "identity_codes",
    "identity_sessions",
    "notify_outbox",
    "audit_events",
    "ledger_transfers",
    "operations",
    "operation_events",
    "wallet_requests",
    "wallet_statements",
    "funding_sources",
    "identity_access_grants",
    "wallet_fx_quotes",
]


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(make_settings(database_url))
    db.run(
        lambda s: create_verified_user(
            s,
            identity=Identity(db.settings),
            handle="wang_wei",
            display_name="Wang Wei",
            password=PASSWORD,
            role="user",
            locale="en",
            actor=Actor(kind="operator", id="t"),
            email="wang.wei@example.com",
        )
    )
    yield db
    db.dispose()


def client_for(database: Database, base_url: str = "http://127.0.0.1:8000") -> TestClient:
    return TestClient(create_app(database.settings, database=database), base_url=base_url)


def csrf(client: TestClient) -> str:
    response = client.get("/signin")
    assert response.status_code == 200
    return str(client.cookies["purse_csrf"])


def test_forms_need_the_csrf_token_of_their_cookie(database: Database) -> None:
    with client_for(database) as client:
        form = {"identifier": "wang_wei", "password": PASSWORD}
        missing = client.post("/signin", data=form, follow_redirects=False)
        assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
        token = csrf(client)
        wrong = client.post(
            "/signin", data={**form, "csrf_token": token[:-2] + "xx"}, follow_redirects=False
        )
        assert wrong.status_code == 403
        ok = client.post("/signin", data={**form, "csrf_token": token}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/home"
        client.cookies.clear()  # a foreign page cannot send our cookie: the same token alone fails
        alone = client.post("/signin", data={**form, "csrf_token": token}, follow_redirects=False)
        assert alone.status_code == 403


def _cookie_header(response: Any, name: str) -> str:
    headers = response.headers.get_list("set-cookie")
    return next(str(h) for h in headers if h.startswith(f"{name}="))


def test_session_cookie_flags(database: Database) -> None:
    for base_url, secure in [
        ("http://127.0.0.1:8000", False),
        ("https://wallet.example.com", True),
    ]:
        with client_for(database, base_url) as client:
            token = csrf(client)
            response = client.post(
                "/signin",
                data={"identifier": "wang_wei", "password": PASSWORD, "csrf_token": token},
                follow_redirects=False,
            )
            cookie = _cookie_header(response, "purse_session").lower()
            assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
            assert ("secure" in cookie) is secure, (base_url, cookie)
    production = make_settings(database.settings.database_url, env="production")
    assert production.cookie_insecure_on_localhost is False  # never dropped in production


def test_pages_carry_a_strict_csp(database: Database) -> None:
    with client_for(database) as client:
        response = client.get("/signin")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    # Scripts only from our own files (htmx, vendored; purse.js), never inline code or styles.
    import re

    scripts = re.findall(r"<script[^>]*>", response.text)
    assert scripts and all(re.search(r'src="/static/[^"]+\.js"', tag) for tag in scripts)
    assert "style=" not in response.text and "<style" not in response.text


def test_get_never_changes_state(database: Database) -> None:
    def counts() -> list[int]:
        return [database.run(partial(_count, table=table)) for table in TABLES]

    with client_for(database) as client:
        token = csrf(client)
        client.post(
            "/signin",
            data={"identifier": "wang_wei", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        before = counts()
        for path in [
            "/",
            "/signin",
            "/signup",
            "/verify",
            "/security",
            "/dev/mailbox",
            "/signout",
            "/security/sessions/end-others",
            "/home",
            "/send",
            "/send/recipient?to=wang_wei",
            "/pay/wang_wei",
            "/request",
            "/receive",
            "/receive/qr.svg",
            "/top-up",
            "/withdraw",
            "/convert",
            "/convert/confirm",
            "/funding-sources",
            "/activity",
            "/statements",
            "/v1/me",
            "/v1/wallet/balances",
            "/v1/wallet/activity",
            "/healthz",
            "/readyz",
            "/metrics",
        ]:
            response = client.get(path, follow_redirects=False)
            assert response.status_code in (200, 303, 401, 404, 405), (path, response.status_code)
        assert counts() == before
        assert (
            client.get("/security").status_code == 200
        )  # still signed in: GET /signout did nothing


def test_a_browser_gets_an_error_page_not_json(database: Database) -> None:
    with client_for(database) as client:
        csrf(client)
        response = client.post(
            "/signin",
            data={"identifier": "wang_wei", "password": PASSWORD},
            headers={"Accept": "text/html,application/xhtml+xml", "Accept-Language": "zh-CN"},
        )
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
        assert 'data-code="csrf_failed"' in response.text
        assert "此表单已过期" in response.text
        api = client.post("/v1/auth/token", json={}, headers={"Accept": "text/html"})
        assert (
            api.headers["content-type"] == "application/problem+json"
        )  # the API never answers HTML


def test_dev_mailbox_only_in_development_on_this_machine_unproxied(database_url: str) -> None:
    for env, headers, status in [
        ("development", {}, 200),
        ("development", {"X-Forwarded-For": "203.0.113.9"}, 404),
        ("development", {"Forwarded": "for=203.0.113.9"}, 404),
        ("test", {}, 404),
    ]:
        db = Database(make_settings(database_url, env=env))
        with client_for(db) as client:
            assert client.get("/dev/mailbox", headers=headers).status_code == status, (env, headers)
        db.dispose()


def test_language_switch_redirects_only_within_the_site(database: Database) -> None:
    with client_for(database) as client:
        token = csrf(client)
        for target, expected in [
            ("/security", "/security"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example", "/"),
        ]:
            response = client.post(
                "/locale",
                data={"csrf_token": token, "locale": "zh-CN", "next": target},
                follow_redirects=False,
            )
            assert response.status_code == 303 and response.headers["location"] == expected, target


def test_sign_in_goes_on_only_to_a_page_of_this_site(database: Database) -> None:
    with client_for(database) as client:
        form = {"identifier": "wang_wei", "password": PASSWORD, "csrf_token": csrf(client)}
        for target, landing in [
            ("/send?to=zhang_wei", "/send?to=zhang_wei"),
            ("//evil.example/", "/home"),
            ("https://evil.example/", "/home"),
            ("/\\evil.example", "/home"),
        ]:
            response = client.post("/signin", data={**form, "next": target}, follow_redirects=False)
            assert response.headers["location"] == landing, target


def _count(session: Session, *, table: str) -> int:
    # Table names are this module's constants, never input.
    return int(session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608
