"""Merchants through the API as tests use them: a shop, its keys, payments, refusals."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from api_support import Api

SHOP = {"name_en": "Lotus Coffee", "name_zh": "莲花咖啡"}
KEY = {"name": "Checkout server", "mode": "test", "scopes": ["payments", "read"]}


def open_shop(api: Api, auth: dict[str, str]) -> dict[str, Any]:
    response = api.client.post("/v1/merchants", json=SHOP, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_key(api: Api, auth: dict[str, str], merchant_id: int, **changes: Any) -> dict[str, Any]:
    response = api.client.post(
        f"/v1/merchants/{merchant_id}/api-keys", json={**KEY, **changes}, headers=auth
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def as_key(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def rows(api: Api, model: type) -> int:
    return int(
        api.database.run(
            lambda s: s.execute(select(func.count()).select_from(model)).scalar_one(), write=False
        )
    )


def check_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["code"] == code, body
    return body


PAYMENT = {
    "amount": {"value": "32.00", "currency": "CNY"},
    "description": "2 flat whites",
    "order_reference": "ORDER-1042",
    "metadata": {"table": "7"},
}


def server_post(api: Api, secret: str, body: Any, key: str | None = "pay-1") -> Any:
    headers = as_key(secret)
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.client.post("/v1/merchant/payments", json=body, headers=headers)


def key_post(api: Api, secret: str, path: str, body: Any = None, key: str | None = "") -> Any:
    """A merchant's server's POST with a fresh Idempotency-Key (or ``key``, or none)."""
    headers = as_key(secret)
    if key is not None:
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
    return api.client.post(path, json=body, headers=headers)
