"""The demo storefront: Lucky Coffee's web shop, a merchant's server as a newcomer would write one.

It runs in the demo's process (``purse serve --demo``, ``./scripts/run``) at
``/demo/shop``, but talks to purse only as any merchant's server does: through the public
API with a secret test key, and by receiving webhooks it verifies with the
``standardwebhooks`` library. At each start it gets a fresh test key and a fresh webhook
endpoint (the ones of earlier runs are ended, since their secrets were shown only to
those runs); the key is printed, to try the API with by hand.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from purse.assembly import Purse
from purse.audit.service import Actor
from purse.identity.models import User
from purse.merchants import queries, service, webhooks
from purse.merchants.models import WEBHOOK_EVENT_TYPES
from purse.merchants.rules import KeyMode
from purse.models import utc_now

ACTOR = Actor(kind="operator", id="demo")
KEY_NAME = "Demo storefront"
MENU = {
    "flat_white": ("Flat white", "馥芮白", "28.00"),
    "latte": ("Latte", "拿铁", "32.00"),
    "beans": ("Coffee beans 250 g", "咖啡豆 250 克", "64.00"),
}


@dataclass(frozen=True, slots=True)
class Received:
    message_id: str
    event_type: str
    reference: str
    status: str
    at: datetime


@dataclass
class Storefront:
    """What the shop's server knows: its key, its webhook secret, its orders, what it heard."""

    merchant_id: int
    base_url: str
    key_secret: str
    webhook_secret: str
    orders: list[str] = field(default_factory=list)
    received: deque[Received] = field(default_factory=lambda: deque(maxlen=50))
    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None) -> Any:
        """The public API, with the shop's secret key (and an idempotency key for a POST)."""
        headers = {"Authorization": f"Bearer {self.key_secret}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = httpx.request(
            method, f"{self.base_url}{path}", json=body, headers=headers, timeout=30
        )
        return response

    def hear(self, body: bytes, headers: dict[str, str]) -> bool:
        """A webhook: verified, handled once per id. False when it does not verify."""
        try:
            event = Webhook(self.webhook_secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        message_id = headers.get("webhook-id", "")
        with self.lock:
            if message_id in self.seen:
                return True  # a retry of one already handled: answer 2xx, do nothing
            self.seen.add(message_id)
            data = event.get("data", {})
            self.received.appendleft(
                Received(
                    message_id=message_id,
                    event_type=str(event.get("type")),
                    reference=str(data.get("reference")),
                    status=str(data.get("status")),
                    at=utc_now(),
                )
            )
        return True


def open_storefront(purse: Purse, *, base_url: str) -> Storefront | None:
    """A fresh test key and webhook endpoint for Lucky Coffee's shop (None: no demo data)."""
    database = purse.database

    def prepare(session: Session) -> tuple[int, str, str] | None:
        owner = session.scalar(select(User.id).where(User.handle == "lucky_coffee"))
        shops = queries.memberships(session, user_id=owner) if owner is not None else []
        if owner is None or not shops:
            return None
        merchant_id = shops[0].merchant.id
        for key in queries.api_keys(session, merchant_id=merchant_id):
            if key.name == KEY_NAME and key.ends_at is None:
                service.revoke_api_key(session, merchant_id=merchant_id, key_id=key.id, actor=ACTOR)
        for endpoint in webhooks.endpoints(session, merchant_id=merchant_id):
            if endpoint.description == KEY_NAME and endpoint.status == "enabled":
                webhooks.set_enabled(
                    session,
                    merchant_id=merchant_id,
                    endpoint_id=endpoint.id,
                    enabled=False,
                    actor=ACTOR,
                )
        _key, secret = service.create_api_key(
            session,
            cipher=purse.identity.cipher,
            merchant_id=merchant_id,
            user_id=owner,
            mode=KeyMode.test,
            name=KEY_NAME,
            scopes=["payments", "refunds", "read"],
            actor=ACTOR,
        )
        _endpoint, webhook_secret = webhooks.create_endpoint(
            session,
            cipher=purse.identity.cipher,
            merchant_id=merchant_id,
            mode=KeyMode.test.value,
            url=f"{base_url}/demo/shop/webhooks",
            event_types=[t for t in WEBHOOK_EVENT_TYPES if t.startswith("payment.")],
            description=KEY_NAME,
            actor=ACTOR,
        )
        return merchant_id, secret, webhook_secret

    prepared = database.run(prepare)
    if prepared is None:
        return None
    merchant_id, secret, webhook_secret = prepared
    return Storefront(
        merchant_id=merchant_id,
        base_url=base_url,
        key_secret=secret,
        webhook_secret=webhook_secret,
    )
