"""Merchant payments under concurrency: racing requests with one idempotency key, one payment."""

from __future__ import annotations

from sqlalchemy import func, select

from factories import race
from purse.audit.service import Actor
from purse.db import Database
from purse.identity.context import Identity
from purse.merchants import payments, service
from purse.merchants.models import MerchantPayment
from purse.merchants.rules import CaptureMethod, KeyMode
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


def test_requests_racing_with_one_key_make_one_payment(database: Database) -> None:
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

    def ask(idempotency_key: str) -> tuple[payments.PaymentRecord, bool]:
        return database.run(
            lambda s: payments.create_payment(
                s,
                merchant_id=shop,
                mode="test",
                key_id=key.id,
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
