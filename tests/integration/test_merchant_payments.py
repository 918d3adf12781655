"""Merchant payments under concurrency: racing requests with one idempotency key, one payment."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import race
from plan_support import captured_selects, faults
from purse.audit.service import Actor
from purse.db import Database
from purse.identity.context import Identity
from purse.merchants import payments, service
from purse.merchants.models import MerchantPayment
from purse.merchants.rules import CaptureMethod, KeyMode, PaymentStatus
from purse.models import utc_now
from wallet_support import make_user

ACTOR = Actor(kind="system", id="tests")
REQUEST = payments.PaymentRequest(
    asset="CNY",
    amount_minor=3200,
    description="2 flat whites",
    order_reference="ORDER-1042",
    metadata={},
    capture_method=CaptureMethod.manual,
    approve_within_seconds=1800,
)


def _shop_with_key(database: Database) -> tuple[int, int]:
    identity = Identity(database.settings)
    owner = make_user(database, identity, handle="shop_owner", display_name="Owner").user_id
    assert owner is not None
    shop = database.run(
        lambda s: service.open_merchant(s, user_id=owner, name_en="Shop", name_zh="店", actor=ACTOR)
    ).merchant.id
    key, _secret = database.run(
        lambda s: service.create_api_key(
            s,
            cipher=identity.cipher,
            merchant_id=shop,
            user_id=owner,
            mode=KeyMode.test,
            name="server",
            scopes=["payments"],
            actor=ACTOR,
        )
    )
    return shop, key.id


def _ask(
    database: Database, shop: int, key_id: int, name: str, *, mode: str = "test", **more: object
) -> payments.PaymentRecord:
    request = dataclasses.replace(REQUEST, **more)  # type: ignore[arg-type]
    return database.run(
        lambda s: payments.create_payment(
            s, merchant_id=shop, mode=mode, key_id=key_id, idempotency_key=name, request=request
        )
    )[0]


def test_requests_racing_with_one_key_make_one_payment(database: Database) -> None:
    shop, key_id = _shop_with_key(database)

    def ask(idempotency_key: str) -> tuple[payments.PaymentRecord, bool]:
        return database.run(
            lambda s: payments.create_payment(
                s,
                merchant_id=shop,
                mode="test",
                key_id=key_id,
                idempotency_key=idempotency_key,
                request=REQUEST,
            )
        )

    for round_number in range(5):
        name = f"race-{round_number}"
        outcomes = race(4, lambda _: ask(name))  # noqa: B023 - race returns before the next round
        assert len({payment.reference for payment, _replayed in outcomes}) == 1, outcomes
        assert sorted(replayed for _payment, replayed in outcomes) == [False, True, True, True]
    count = database.run(
        lambda s: s.execute(select(func.count()).select_from(MerchantPayment)).scalar_one(),
        write=False,
    )
    assert count == 5


def test_pages_of_payments_neither_skip_nor_repeat_and_filters_hold(database: Database) -> None:
    shop, key_id = _shop_with_key(database)
    made = [
        _ask(database, shop, key_id, f"k{i}", order_reference=f"ORDER-{i % 3}").reference
        for i in range(7)
    ]
    _ask(database, shop, key_id, "live-one", mode="live")

    def pages(status: PaymentStatus | None = None, order_reference: str | None = None) -> list[str]:
        seen: list[str] = []
        cursor: int | None = None
        while True:

            def read(session: Session, cursor: int | None = cursor) -> payments.PaymentPage:
                return payments.payments_for_key(
                    session,
                    merchant_id=shop,
                    mode="test",
                    status=status,
                    order_reference=order_reference,
                    cursor=cursor,
                    limit=3,
                )

            page = database.run(read, write=False)
            seen += [payment.reference for payment in page.items]
            if page.next_cursor is None:
                return seen
            cursor = int(page.next_cursor)

    assert pages() == made[::-1]
    assert pages(order_reference="ORDER-1") == [made[4], made[1]]
    assert pages(status=PaymentStatus.captured) == []
    assert len(pages(status=PaymentStatus.requires_approval)) == 7


def test_a_payment_not_approved_in_time_expires_and_the_job_writes_it(database: Database) -> None:
    shop, key_id = _shop_with_key(database)
    due = _ask(database, shop, key_id, "due", approve_within_seconds=60)
    later = _ask(database, shop, key_id, "later", approve_within_seconds=3600)
    assert due.status == "requires_approval"
    after = utc_now() + timedelta(seconds=120)
    # Shown expired as soon as its window ends, before the job has run.
    page = database.run(
        lambda s: payments.payments_for_key(
            s, merchant_id=shop, mode="test", status=PaymentStatus.expired, now=after
        ),
        write=False,
    )
    assert [payment.reference for payment in page.items] == [due.reference]
    assert page.items[0].status == "expired"
    assert database.run(lambda s: payments.expire_unapproved(s, now=after)) == 1
    assert database.run(lambda s: payments.expire_unapproved(s, now=after)) == 0
    stored = database.run(
        lambda s: {
            row.reference: row.status
            for row in s.execute(select(MerchantPayment.reference, MerchantPayment.status))
        },
        write=False,
    )
    assert stored == {due.reference: "expired", later.reference: "requires_approval"}


def test_the_payment_queries_read_along_an_index(database: Database) -> None:
    shop, key_id = _shop_with_key(database)
    for i in range(5):
        _ask(database, shop, key_id, f"k{i}", order_reference="ORDER-1")
    reads = {
        "first page": lambda s: payments.payments_for_key(s, merchant_id=shop, mode="test"),
        "deep page": lambda s: payments.payments_for_key(
            s, merchant_id=shop, mode="test", cursor=3
        ),
        "by order": lambda s: payments.payments_for_key(
            s, merchant_id=shop, mode="test", order_reference="ORDER-1"
        ),
        "due": lambda s: payments.expire_unapproved(s, now=utc_now()),
    }
    for name, read in reads.items():
        with captured_selects(database.engine) as selects:
            database.run(read, write=name == "due")
        assert any("merchant_payments" in sql for sql, _ in selects), name
        found = faults(database, selects)
        assert found == [], f"{name}: " + "\n\n".join(f"{sql}\n{steps}" for sql, steps in found)
