"""The HTTP layer every route shares: headers on every answer, bounded bodies, where 202s point.

Slow clients and the server's own limits are tested over real sockets in
test_http_server.py; the admission of requests in test_admission.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import make_settings
from purse.app import create_app
from purse.db import Database
from purse.funding.api import CALLBACK_BODY_BYTES_MAX
from purse.ledger.verify import verify_ledger
from purse.wallet.context import Wallet
from wallet_support import PASSWORD, make_user

HSTS = "max-age=63072000; includeSubDomains"


@dataclass
class Caller:
    client: TestClient
    database: Database
    auth: dict[str, str]

    @property
    def wallet(self) -> Wallet:
        return self.client.app.state.wallet  # type: ignore[attr-defined,no-any-return]

    def post(self, path: str, body: Any, key: str | None = None) -> Any:
        headers = {**self.auth, "Idempotency-Key": key or str(uuid.uuid4())}
        return self.client.post(path, json=body, headers=headers)

    def card(self) -> int:
        body = {
            "kind": "card",
            "number": "4242424242424242",
            "expiry_month": 12,
            "expiry_year": 2099,
            "holder_name": "Wang Wei",
        }
        response = self.client.post("/v1/wallet/funding-sources", json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])


@pytest.fixture
def caller(database_url: str) -> Iterator[Caller]:
    database = Database(make_settings(database_url, simulator_settle_seconds=0))
    with TestClient(create_app(database.settings, database=database)) as client:
        wallet: Wallet = client.app.state.wallet  # type: ignore[attr-defined]
        make_user(database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
        make_user(database, wallet.identity, handle="zhang_wei", display_name="Zhang Wei")
        token = client.post("/v1/auth/token", json={"identifier": "wang_wei", "password": PASSWORD})
        assert token.status_code == 201, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        yield Caller(client=client, database=database, auth=auth)
    report = database.run(lambda s: verify_ledger(s, hold_expiry_grace_seconds=10**9), write=False)
    assert report.ok, report.problems
    database.dispose()


def test_every_answer_is_nosniff_and_only_public_ones_may_be_stored(caller: Caller) -> None:
    client = caller.client
    private = {
        "balances": client.get("/v1/wallet/balances", headers=caller.auth),
        "profile": client.get("/v1/me", headers=caller.auth),
        "problem": client.get("/v1/wallet/balances"),  # 401
        "unknown path": client.get("/v1/nothing-here"),
        "page": client.get("/signin"),
        "health": client.get("/healthz"),
    }
    for name, response in private.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["cache-control"] == "no-store", name
    assert private["balances"].status_code == 200 and private["profile"].status_code == 200
    public = {
        "schema": client.get("/openapi.json"),
        "static file": client.get("/static/purse.css"),
    }
    for name, response in public.items():
        assert response.status_code == 200, name
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert "no-store" not in response.headers.get("cache-control", ""), name
    assert "etag" in public["static file"].headers  # static files keep their validators


def test_hsts_only_over_https(database_url: str) -> None:
    database = Database(make_settings(database_url))
    app = create_app(database.settings, database=database)
    try:
        with TestClient(app, base_url="https://wallet.example.com") as secure:
            assert secure.get("/healthz").headers["strict-transport-security"] == HSTS
            assert secure.get("/signin").headers["strict-transport-security"] == HSTS
        with TestClient(app, base_url="http://127.0.0.1:8000") as plain:
            assert "strict-transport-security" not in plain.get("/healthz").headers
    finally:
        database.dispose()


def test_accepted_answers_say_where_to_follow_them(caller: Caller) -> None:
    source = caller.card()
    amount = {"value": "10.00", "currency": "CNY"}
    key = str(uuid.uuid4())
    top_up = caller.post(
        "/v1/wallet/top-ups",
        {"funding_source_id": source, "amount": amount},
        key=key,
    )
    assert top_up.status_code == 202, top_up.text
    reference = top_up.json()["reference"]
    assert top_up.headers["location"] == f"/v1/wallet/operations/{reference}"
    replayed = caller.post(
        "/v1/wallet/top-ups",
        {"funding_source_id": source, "amount": amount},
        key=key,
    )
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["location"] == top_up.headers["location"]
    caller.wallet.simulator.settle_due()
    followed = caller.client.get(top_up.headers["location"], headers=caller.auth)
    assert followed.status_code == 200 and followed.json()["reference"] == reference

    withdrawal = caller.post(
        "/v1/wallet/withdrawals",
        {"funding_source_id": source, "amount": {"value": "1.00", "currency": "CNY"}},
    )
    assert withdrawal.status_code == 202, withdrawal.text
    assert withdrawal.headers["location"] == (
        f"/v1/wallet/operations/{withdrawal.json()['reference']}"
    )
    caller.wallet.simulator.settle_due()

    statement = caller.client.post(
        "/v1/wallet/statements", json={"month": "2026-01", "format": "csv"}, headers=caller.auth
    )
    assert statement.status_code == 202, statement.text
    assert statement.headers["location"] == f"/v1/wallet/statements/{statement.json()['id']}"
    followed = caller.client.get(statement.headers["location"], headers=caller.auth)
    assert followed.status_code == 200 and followed.json()["id"] == statement.json()["id"]


def _balance(caller: Caller) -> str:
    balances = caller.client.get("/v1/wallet/balances", headers=caller.auth).json()
    return str(next(item["balance"]["value"] for item in balances if item["currency"] == "CNY"))


def test_bodies_over_the_cap_are_refused_before_the_route_runs(caller: Caller) -> None:
    bytes_max = caller.database.settings.http_body_bytes_max
    source = caller.card()
    top_up = caller.post(
        "/v1/wallet/top-ups",
        {"funding_source_id": source, "amount": {"value": "50.00", "currency": "CNY"}},
    )
    assert top_up.status_code == 202
    caller.wallet.simulator.settle_due()
    before = _balance(caller)
    send = b'{"to": "zhang_wei", "amount": {"value": "1.00", "currency": "CNY"}}'
    padded = send + b" " * (bytes_max + 1 - len(send))  # valid JSON, one byte too many
    headers = {**caller.auth, "Content-Type": "application/json"}

    declared = caller.client.post(
        "/v1/wallet/transfers", content=padded, headers={**headers, "Idempotency-Key": "a-1"}
    )
    assert declared.status_code == 413, declared.text
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["code"] == "body_too_large"
    assert declared.json()["bytes_max"] == bytes_max
    assert declared.headers["connection"] == "close"  # the rest of the body is not read

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(padded), 4096):
            yield padded[start : start + 4096]

    streamed = caller.client.post(
        "/v1/wallet/transfers", content=chunks(), headers={**headers, "Idempotency-Key": "a-2"}
    )
    assert streamed.status_code == 413 and streamed.json()["code"] == "body_too_large"
    assert _balance(caller) == before  # neither reached the route: no money moved

    fits = caller.client.post(
        "/v1/wallet/transfers",
        content=padded[:-1],
        headers={**headers, "Idempotency-Key": "a-3"},
    )
    assert fits.status_code == 201, fits.text


def test_provider_callbacks_have_a_smaller_cap(caller: Caller) -> None:
    url = "/v1/funding/providers/simulator/events"
    assert CALLBACK_BODY_BYTES_MAX < caller.database.settings.http_body_bytes_max
    too_large = caller.client.post(url, content=b"{" + b" " * CALLBACK_BODY_BYTES_MAX + b"}")
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "body_too_large"
    assert too_large.json()["bytes_max"] == CALLBACK_BODY_BYTES_MAX
    # Within the cap, the body reaches the provider whole: an unsigned one is refused there.
    unsigned = caller.client.post(url, content=b"{" + b" " * 1000 + b"}")
    assert unsigned.status_code != 413
    assert unsigned.json()["code"] == "provider_event_invalid"
