"""Webhooks to a receiver on 127.0.0.1 that verifies them with the ``standardwebhooks`` library.

On both databases: events leave only after their transaction committed, through the
worker's job; they are signed as the specification says, and every bad case is refused
by the receiver's verification (a tampered body, the wrong secret, an old timestamp, a
duplicate id); retries keep the id and stop at the cap, and then the endpoint is turned
off and its merchant told; a rotated secret signs beside the old one for the overlap;
and no request goes to an address inside the operator's network in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from factories import make_settings, seal_and_check
from merchant_support import Setup
from purse.assembly import Purse, assemble
from purse.audit.service import Actor
from purse.db import Database
from purse.errors import PurseError
from purse.merchants import delivery, errors, webhooks
from purse.merchants.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from purse.merchants.rules import RefundReason
from purse.models import utc_now
from purse.notify.models import OutboxMessage
from webhook_receiver import receiver

ACTOR = Actor(kind="system", id="tests")
EVERYTHING = ["payment.authorized", "payment.captured", "payment.refunded", "payment.voided"]


@pytest.fixture
def purse(database_url: str) -> Iterator[Purse]:
    """purse with webhook retries that come at once (three of them), so a test can run them."""
    database = Database(
        make_settings(
            database_url, simulator_settle_seconds=0, merchant_webhook_retry_seconds=[0, 0, 0]
        )
    )
    try:
        yield assemble(database.settings, database=database)
        report = seal_and_check(database)
        assert report.ok, report.problems
    finally:
        database.dispose()


@pytest.fixture
def setup(purse: Purse) -> Setup:
    return Setup(purse)


def endpoint(setup: Setup, url: str, types: list[str] | None = None) -> tuple[int, str]:
    found, secret = setup.database.run(
        lambda s: webhooks.create_endpoint(
            s,
            cipher=setup.purse.identity.cipher,
            merchant_id=setup.shop,
            mode="live",
            url=url,
            event_types=types or EVERYTHING,
            description="shop server",
            actor=ACTOR,
        )
    )
    return found.id, secret


def deliver(setup: Setup) -> int:
    return delivery.deliver_due(setup.database, identity=setup.purse.identity, limit=50)


def take(setup: Setup, reference: str, key: str = "capture") -> None:
    setup.capture(reference, key=key)


def test_events_arrive_signed_once_each_and_only_after_they_commit(setup: Setup) -> None:
    with receiver() as shop:
        _id, shop.secret = endpoint(setup, shop.url)
        reference = setup.approved("order-1")
        take(setup, reference)
        # A capture that fails changes nothing and tells nobody: no event for it.
        with pytest.raises(PurseError):
            take(setup, reference, key="again")
        assert shop.received == []  # nothing leaves inside the transaction that made it
        setup.refund(reference, amount_minor=250, reason=RefundReason.duplicate)
        assert deliver(setup) == 3
        assert deliver(setup) == 0  # all answered 200: nothing is due
    events = shop.events
    assert [event["type"] for event in events] == [
        "payment.authorized",
        "payment.captured",
        "payment.refunded",
    ]
    assert all(event["data"]["reference"] == reference for event in events)
    assert events[1]["data"]["captured"] == {"value": "10.00", "currency": "CNY"}
    assert events[2]["data"]["refund"]["amount"] == {"value": "2.50", "currency": "CNY"}
    assert events[2]["data"]["refund"]["reason"] == "duplicate"
    ids = [r.headers["webhook-id"] for r in shop.received]
    assert len(set(ids)) == 3 and all(i.startswith("msg_") for i in ids)
    first = shop.received[0]
    assert first.headers["webhook-signature"].startswith("v1,")
    assert first.headers["content-type"] == "application/json"


def test_the_receiver_refuses_every_bad_case(setup: Setup) -> None:
    """What a merchant's verification refuses, for a request purse really sent."""
    with receiver() as shop:
        _id, shop.secret = endpoint(setup, shop.url)
        setup.approved("order-2")
        assert deliver(setup) == 1
    sent = shop.received[0]
    headers, body = sent.headers, sent.body
    assert sent.verified is not None
    good = Webhook(shop.secret)
    with pytest.raises(WebhookVerificationError):
        good.verify(body.replace(b"10.00", b"99.00"), headers)  # a tampered body
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)  # the wrong secret
    old = utc_now() - timedelta(minutes=6)
    stale = {
        **headers,
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": good.sign(headers["webhook-id"], old, body),
    }
    with pytest.raises(WebhookVerificationError):
        good.verify(body, stale)  # signed right, but older than 5 minutes
    # The same id again (a resend): verified, seen as a duplicate, not handled twice.
    assert shop.handle(headers, body) == 200
    assert shop.received[-1].duplicate and len(shop.events) == 1


def test_retries_keep_the_id_stop_at_the_cap_and_turn_the_endpoint_off(setup: Setup) -> None:
    with receiver() as shop:
        endpoint_id, shop.secret = endpoint(setup, shop.url)
        shop.answers = [500, 503, 500, 500, 500]
        setup.approved("order-3")
        for _ in range(6):
            deliver(setup)
    assert len(shop.received) == 4  # the first try and the three retries of the schedule
    assert len({r.headers["webhook-id"] for r in shop.received}) == 1

    def read(s: Any) -> tuple[Any, ...]:
        found = s.execute(select(WebhookDelivery.status, WebhookDelivery.attempts)).one()
        state = s.execute(
            select(WebhookEndpoint.status, WebhookEndpoint.disabled_reason).where(
                WebhookEndpoint.id == endpoint_id
            )
        ).one()
        told = s.scalars(
            select(OutboxMessage.template).where(
                OutboxMessage.template == "webhook_endpoint_disabled"
            )
        ).all()
        return tuple(found), tuple(state), told

    found, state, told = setup.database.run(read, write=False)
    assert found == ("failed", 4)
    assert state == ("disabled", "failing")
    assert len(told) >= 1  # the shop's owner, by every channel they have

    # Resent by hand once it works again: the same id, and it is handled.
    log = setup.database.run(
        lambda s: webhooks.deliveries(s, merchant_id=setup.shop, endpoint_id=endpoint_id)
    )[0]
    assert [attempt.status_code for attempt in log.log] == [500, 503, 500, 500]
    assert log.log[0].response_excerpt == '{"ok": false}'
    with receiver() as fixed:
        fixed.secret = shop.secret
        setup.database.run(
            lambda s: s.execute(
                WebhookEndpoint.__table__.update()  # type: ignore[attr-defined]
                .where(WebhookEndpoint.id == endpoint_id)
                .values(url=fixed.url)
            )
        )
        setup.database.run(
            lambda s: webhooks.set_enabled(
                s, merchant_id=setup.shop, endpoint_id=endpoint_id, enabled=True, actor=ACTOR
            )
        )
        setup.database.run(
            lambda s: webhooks.resend(
                s, merchant_id=setup.shop, delivery_id=log.id, actor=ACTOR, now=utc_now()
            )
        )
        assert deliver(setup) == 1
    assert fixed.received[0].headers["webhook-id"] == shop.received[0].headers["webhook-id"]
    assert len(fixed.events) == 1


def test_a_rotated_secret_signs_beside_the_old_one_for_the_overlap(setup: Setup) -> None:
    with receiver() as shop:
        endpoint_id, old_secret = endpoint(setup, shop.url)
        _rotated, new_secret = setup.database.run(
            lambda s: webhooks.rotate_secret(
                s,
                cipher=setup.purse.identity.cipher,
                merchant_id=setup.shop,
                endpoint_id=endpoint_id,
                overlap_seconds=3600,
                actor=ACTOR,
            )
        )
        shop.secret = old_secret  # not deployed yet: the old secret still verifies
        setup.approved("order-4")
        deliver(setup)
        assert len(shop.events) == 1
        assert len(shop.received[0].headers["webhook-signature"].split(" ")) == 2
        Webhook(new_secret).verify(shop.received[0].body, shop.received[0].headers)

        setup.database.run(
            lambda s: webhooks.rotate_secret(
                s,
                cipher=setup.purse.identity.cipher,
                merchant_id=setup.shop,
                endpoint_id=endpoint_id,
                overlap_seconds=0,
                actor=ACTOR,
            )
        )
        setup.approved("order-5")
        deliver(setup)
    # Rotated with no overlap: one signature, by a secret the receiver does not have.
    assert shop.received[-1].verified is None
    assert len(shop.received[-1].headers["webhook-signature"].split(" ")) == 1


@pytest.mark.parametrize(
    ("url", "addresses", "problem"),
    [
        ("http://127.0.0.1:9/hook", ["127.0.0.1"], "loopback"),
        ("http://localhost/hook", ["127.0.0.1", "::1"], "loopback"),
        ("http://[::1]/hook", ["::1"], "loopback"),
        ("http://10.1.2.3/hook", ["10.1.2.3"], "private"),
        ("https://intranet.example/hook", ["192.168.1.20"], "private"),
        ("http://169.254.169.254/latest/meta-data", ["169.254.169.254"], "link_local"),
        ("https://mapped.example/hook", ["::ffff:10.0.0.1"], "private"),
        ("https://nowhere.example/hook", [], "unresolvable"),
        ("https://shop.example.com/hook", ["93.184.216.34"], None),
    ],
)
def test_production_refuses_addresses_inside_the_network(
    url: str, addresses: list[str], problem: str | None
) -> None:
    settings = make_settings("sqlite://", env="production")
    assert not settings.webhooks_reach_private_addresses

    def resolver(_host: str, _port: int) -> list[str]:
        return addresses

    assert delivery.destination_problem(url, settings=settings, resolver=resolver) == problem
    if problem is not None:
        with pytest.raises(errors.WebhookUrlNotAllowed):
            delivery.check_destination(url, settings=settings, resolver=resolver)


def test_an_attempt_to_a_name_now_pointing_inside_is_not_sent(setup: Setup) -> None:
    """A name that resolved outside when registered and inside now: nothing is sent."""
    settings = setup.database.settings.model_copy(
        update={"merchant_webhook_private_addresses": False}
    )
    with receiver() as shop:
        _id, shop.secret = endpoint(setup, shop.url)
        setup.approved("order-6")
        claims = setup.database.run(
            lambda s: webhooks.claim_due(
                s, cipher=setup.purse.identity.cipher, now=utc_now(), limit=10
            )
        )
        with httpx.Client() as client:
            outcome = delivery.send(claims[0], settings=settings, client=client)
    assert outcome.status_code is None and outcome.error == "address_not_allowed:loopback"
    assert shop.received == []


def test_the_body_sent_is_the_body_stored_and_the_secret_is_stored_encrypted(
    setup: Setup,
) -> None:
    with receiver() as shop:
        _id, shop.secret = endpoint(setup, shop.url)
        setup.approved("order-7")
        deliver(setup)
    stored = setup.database.run(
        lambda s: (
            s.scalar(select(WebhookEvent.body)),
            s.scalar(select(WebhookEndpoint.secret_encrypted)),
        ),
        write=False,
    )
    assert stored[0] is not None and stored[0].encode() == shop.received[0].body
    assert json.loads(stored[0])["type"] == "payment.authorized"
    assert shop.secret not in str(stored[1]) and shop.secret[6:] not in str(stored[1])
