"""The HTTP shell: problem+json for every error, request ids, health, readiness, metrics, docs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from factories import make_settings
from purse.app import create_app
from purse.db import Database
from purse.ledger.errors import InsufficientFunds
from purse.logs import configure_logging


class Payment(BaseModel):
    amount: str


class Profile(BaseModel):
    name: str = Field(max_length=5)
    age: int = Field(le=150)
    kind: Literal["card", "bank_account"]
    note: str


def add_test_routes(app: FastAPI) -> None:
    @app.post("/test/validate")
    def validate(payment: Payment) -> dict[str, str]:
        return {"amount": payment.amount}

    @app.post("/test/profile")
    def profile(profile: Profile) -> dict[str, str]:
        return {"name": profile.name}

    @app.get("/test/purse-error")
    def purse_error() -> None:
        raise InsufficientFunds()

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("secret internals: password=hunter2")


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app = create_app(make_settings(database_url))
    add_test_routes(app)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"https://purse.dev/problems/{code}"
    assert body["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    return body


def test_healthz_and_request_ids(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert len(response.headers["x-request-id"]) == 32
    kept = client.get("/healthz", headers={"X-Request-ID": "caller-id-123"})
    assert kept.headers["x-request-id"] == "caller-id-123"
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\x01"})
    assert replaced.headers["x-request-id"] != "bad id\x01"


def test_readyz_checks_database_and_migrations(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/readyz").json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok"},
    }
    empty = create_app(make_settings(f"sqlite:///{tmp_path}/empty.db"))
    with TestClient(empty) as other:
        response = other.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "pending"
    unreachable = create_app(make_settings("postgresql://nobody@/none?host=/nonexistent"))
    with TestClient(unreachable) as other:
        response = other.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["database"] == "unreachable"


def test_errors_are_problem_json(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404, "not_found")
    assert_problem(client.post("/healthz"), 405, "method_not_allowed")
    assert client.post("/healthz").headers["allow"] == "GET"
    # Found by the API fuzz: Starlette's Allow named only the first route on a path.
    assert client.put("/v1/me/2fa/totp").headers["allow"] == "DELETE, POST"
    # "end-others" is named by its own route, not taken for a {session_id}.
    assert client.put("/v1/me/sessions/end-others").headers["allow"] == "POST"
    assert client.put("/v1/me/sessions/12").headers["allow"] == "DELETE"
    assert client.delete("/v1/wallet/funding-sources").headers["allow"] == "GET, POST"
    body = assert_problem(
        client.post("/test/validate", json={"amount": 5}), 422, "validation_failed"
    )
    assert body["errors"] == [
        {
            "location": ["body", "amount"],
            "message": "Must be a string.",
            "type": "string_type",
        }
    ]
    assert_problem(client.post("/test/validate", content=b"{not json"), 422, "validation_failed")
    body = assert_problem(client.get("/test/purse-error"), 409, "insufficient_funds")
    assert body["title"] == "Insufficient funds"
    assert (
        body["detail"] == "There is not enough money in the account." and body["retryable"] is True
    )
    zh = client.get("/test/purse-error", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.json()["detail"] == "账户余额不足。" and zh.headers["content-language"] == "zh-CN"
    assert zh.json()["title"] == "余额不足"


def _messages(response: object) -> dict[str, str]:
    body = assert_problem(response, 422, "validation_failed")
    errors = body["errors"]
    assert isinstance(errors, list)
    return {item["location"][-1]: item["message"] for item in errors}


def test_validation_messages_speak_the_callers_language(client: TestClient) -> None:
    """Pydantic's messages are English; purse words the common types itself, with their
    limits, in English and Simplified Chinese (an unknown type keeps Pydantic's text)."""
    bad = {"name": "Wang Wei the Great", "age": 200, "kind": "cash"}
    english = _messages(client.post("/test/profile", json=bad))
    assert english == {
        "name": "Must have at most 5 characters.",
        "age": "Must be at most 150.",
        "kind": "Must be one of: 'card' or 'bank_account'.",
        "note": "This field is required.",
    }
    zh = {"Accept-Language": "zh-CN"}
    chinese = _messages(client.post("/test/profile", json=bad, headers=zh))
    assert chinese == {
        "name": "最多 5 个字符。",
        "age": "不能大于 150。",
        "kind": "必须是以下之一：'card'、'bank_account'。",
        "note": "此字段为必填项。",
    }
    typed = _messages(
        client.post(
            "/test/profile",
            json={"name": 7, "age": "old", "kind": "card", "note": "x", "extra": 1},
            headers=zh,
        )
    )
    assert typed == {"name": "必须是字符串。", "age": "必须是整数。"}
    broken = client.post(
        "/test/profile",
        content=b'{"name": ',
        headers={**zh, "Content-Type": "application/json"},
    )
    assert list(_messages(broken).values()) == ["请求体不是有效的 JSON。"]


def test_unexpected_errors_say_nothing_about_internals(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info")
    response = client.get("/test/crash")
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert body["retryable"] is True
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    crash = [line for line in lines if line["event"] == "request.crashed"]
    assert crash and crash[0]["request_id"] == response.headers["x-request-id"]
    access = [
        line for line in lines if line["event"] == "http.request" and line["path"] == "/test/crash"
    ]
    assert (
        access[0]["status"] == 500 and access[0]["request_id"] == response.headers["x-request-id"]
    )


def test_metrics_docs_and_openapi(client: TestClient) -> None:
    client.get("/healthz")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'purse_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    for line in ("purse_http_requests_waiting", "purse_http_requests_working"):
        assert f"\n{line} 0.0\n" in metrics.text  # the line in front of the work, and the work
    assert "\npurse_db_writers_waiting 0.0\n" in metrics.text  # the line in front of the writer
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    # Found by the API fuzz: the schema must say what the server requires.
    moves_money = [
        spec["paths"][path]["post"]
        for path in ("/v1/wallet/transfers", "/v1/wallet/top-ups", "/v1/wallet/withdrawals")
    ]
    for operation in moves_money:
        [key] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["in"] == "header" and key["required"] is True
        problem = operation["responses"]["400"]["content"]["application/problem+json"]
        assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert client.post("/v1/wallet/transfers", json={}).status_code == 401  # who, before what


# Written out, so that any change to the strict policy is a change to this test too.
STRICT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = [part.split() for part in policy.split(";") if part.strip()]
    return {name: sources for name, *sources in parsed}


def test_api_docs_get_only_the_csp_they_need(client: TestClient) -> None:
    """Swagger UI runs under the strict policy; ReDoc gets inline styles and a blob: worker
    and nothing else; ordinary pages keep the strict policy. No remote origin anywhere."""
    signin = client.get("/signin")
    assert signin.status_code == 200
    assert signin.headers["content-security-policy"] == STRICT_POLICY
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert docs.headers["content-security-policy"] == STRICT_POLICY
    redoc = client.get("/redoc")
    assert redoc.status_code == 200
    relaxed = directives(redoc.headers["content-security-policy"])
    assert relaxed["style-src"] == ["'self'", "'unsafe-inline'"]
    assert relaxed.pop("worker-src") == ["blob:"]
    assert {name: sources for name, sources in relaxed.items() if name != "style-src"} == {
        name: sources for name, sources in directives(STRICT_POLICY).items() if name != "style-src"
    }
    for page in (docs, redoc):
        assert page.headers["x-frame-options"] == "DENY"
        # No inline script or style: every script and stylesheet is a file of ours, and
        # each of them is served.
        assert "<style" not in page.text and "style=" not in page.text
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts and all(re.search(r' src="/static/[^"]+\.js"', tag) for tag in scripts)
        files = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        assert any(path.endswith(".css") for path in files)
        for path in files:
            assert client.get(path).status_code == 200, path
        assert 'data-openapi-url="/openapi.json"' in page.text
    assert "content-security-policy" not in client.get("/openapi.json").headers


def test_apps_do_not_share_metrics(database_url: str) -> None:
    first = create_app(make_settings(database_url))
    second = create_app(make_settings(database_url))
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/healthz")
        assert 'route="/healthz"' not in b.get("/metrics").text


def test_embedded_workers_run_with_the_app(database_url: str) -> None:
    database = Database(make_settings(database_url, worker_interval_seconds=0.05))
    app = create_app(database.settings, database=database, run_workers=True)
    with TestClient(app) as test_client:
        assert test_client.get("/healthz").status_code == 200
    database.dispose()


def test_standard_library_logs_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    configure_logging("info")
    logging.getLogger("uvicorn.error").info(
        "started %s", "server", extra={"api_token": "t0ps3cret"}
    )
    output = capsys.readouterr().err
    assert "t0ps3cret" not in output
    line = json.loads(output.strip().splitlines()[-1])
    assert line["event"] == "started server" and line["logger"] == "uvicorn.error"
    assert line["level"] == "info" and "timestamp" in line
