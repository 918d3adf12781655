"""Merchants as tests use them: through the API (a shop, its keys, payments, refusals),
and through the services (:class:`Setup`: a shop, a live key, a customer with money)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from api_support import Api
from purse.assembly import Purse
from purse.audit.service import Actor
from purse.identity.principal import Principal
from purse.merchants import capture, checkout, payments, refunds, service
from purse.merchants.rules import CaptureMethod, KeyMode, RefundReason
from purse.models import utc_now
from purse.operations.context import Operations
from wallet_support import make_user, top_up

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


ACTOR = Actor(kind="system", id="tests")
AMOUNT = 1000  # 10.00 CNY


class Setup:
    """A shop with a live key, and a customer with 1,000.00 CNY in her wallet."""

    def __init__(self, purse: Purse) -> None:
        database = self.database = purse.database
        self.purse = purse
        self.operations: Operations = purse.operations
        identity = purse.identity
        owner = make_user(database, identity, handle="shop_owner", display_name="Owner")
        assert owner.user_id is not None
        self.shop = database.run(
            lambda s: service.open_merchant(
                s, user_id=owner.user_id or 0, name_en="Shop", name_zh="店", actor=ACTOR
            )
        ).merchant.id
        key, _secret = database.run(
            lambda s: service.create_api_key(
                s,
                cipher=identity.cipher,
                merchant_id=self.shop,
                user_id=owner.user_id or 0,
                mode=KeyMode.live,
                name="server",
                scopes=["payments", "refunds"],
                actor=ACTOR,
            )
        )
        self.key = Principal.merchant_key(
            key_id=key.id,
            merchant_id=self.shop,
            mode="live",
            scopes=frozenset({"payments", "refunds"}),
        )
        self.customer = make_user(database, identity, handle="customer", display_name="Cu")
        top_up(purse.wallet, self.customer, amount_minor=100_000)

    def created(self, name: str, *, amount_minor: int = AMOUNT) -> str:
        """A payment the shop asked for, waiting for its customer."""
        made, _ = self.database.run(
            lambda s: payments.create_payment(
                s,
                merchant_id=self.shop,
                mode="live",
                key_id=self.key.key_id or 0,
                idempotency_key=name,
                request=payments.PaymentRequest(
                    asset="CNY",
                    amount_minor=amount_minor,
                    description="coffee",
                    order_reference=name,
                    metadata={},
                    capture_method=CaptureMethod.manual,
                    approve_within_seconds=1800,
                ),
            )
        )
        return made.reference

    def approved(self, name: str) -> str:
        """A payment the customer approved: its money held on their wallet."""
        reference = self.created(name)
        self.approve(reference, self.customer)
        return reference

    def approve(self, reference: str, customer: Principal) -> checkout.Checkout:
        return self.database.run(
            lambda s: checkout.approve(
                s,
                operations=self.operations,
                principal=customer,
                reference=reference,
                idempotency_key=str(uuid.uuid4()),
                now=utc_now(),
            )
        )[0]

    def capture(
        self,
        reference: str,
        *,
        amount_minor: int | None = None,
        fulfilment: str | None = None,
        key: str = "capture",
    ) -> payments.PaymentRecord:
        """The shop's server takes the held money (all, or ``amount_minor``)."""
        return self.database.run(
            lambda s: capture.capture(
                s,
                operations=self.operations,
                principal=self.key,
                merchant_id=self.shop,
                mode="live",
                reference=reference,
                amount=("CNY", amount_minor) if amount_minor is not None else None,
                fulfilment_reference=fulfilment,
                idempotency_key=key,
                now=utc_now(),
            )
        )[0]

    def refund(
        self,
        reference: str,
        *,
        amount_minor: int,
        reason: RefundReason = RefundReason.requested_by_customer,
        key: str = "refund",
    ) -> object:
        """The shop's server gives ``amount_minor`` back."""
        return self.database.run(
            lambda s: refunds.refund(
                s,
                operations=self.operations,
                principal=self.key,
                merchant_id=self.shop,
                mode="live",
                reference=reference,
                amount=("CNY", amount_minor),
                reason=reason,
                idempotency_key=key,
                now=utc_now(),
            )
        )
