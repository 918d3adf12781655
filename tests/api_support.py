"""The wallet API as a client uses it: a TestClient, tokens, and the calls tests repeat."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from purse.db import Database
from purse.wallet.context import Wallet
from wallet_support import PASSWORD, make_user


@dataclass
class Api:
    client: TestClient
    database: Database

    @property
    def wallet(self) -> Wallet:
        return self.client.app.state.wallet  # type: ignore[attr-defined,no-any-return]

    def token(self, handle: str) -> dict[str, str]:
        response = self.client.post(
            "/v1/auth/token", json={"identifier": handle, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def user(self, handle: str, name: str, **kwargs: Any) -> dict[str, str]:
        make_user(self.database, self.wallet.identity, handle=handle, display_name=name, **kwargs)
        return self.token(handle)

    def post(self, path: str, auth: dict[str, str], body: Any, key: str | None = "") -> Any:
        headers = dict(auth)
        if key is not None:
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        return self.client.post(path, json=body, headers=headers)

    def card(self, auth: dict[str, str], number: str = "4242424242424242") -> int:
        response = self.client.post(
            "/v1/wallet/funding-sources",
            json={
                "kind": "card",
                "number": number,
                "expiry_month": 12,
                "expiry_year": 2099,
                "holder_name": "Wang Wei",
            },
            headers=auth,
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def top_up(self, auth: dict[str, str], value: str, currency: str = "CNY") -> Any:
        source = self.card(auth)
        response = self.post(
            "/v1/wallet/top-ups",
            auth,
            {"funding_source_id": source, "amount": {"value": value, "currency": currency}},
        )
        assert response.status_code == 202, response.text
        self.wallet.simulator.settle_due()
        return self.client.get(
            f"/v1/wallet/operations/{response.json()['reference']}", headers=auth
        ).json()

    def balance(self, auth: dict[str, str], currency: str = "CNY") -> dict[str, Any]:
        found = self.client.get("/v1/wallet/balances", headers=auth).json()
        return next(item for item in found if item["currency"] == currency)


def send_body(to: str = "zhang_wei", value: str = "25.50", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": to,
        "amount": {"value": value, "currency": "CNY"},
        "note": "dinner",
    }
    body.update(changes)
    return body
