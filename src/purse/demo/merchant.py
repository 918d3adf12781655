"""The demo's coffee shop as a merchant, with a payment history worth explaining.

Lucky Coffee (幸运咖啡) is run by the demo person ``lucky_coffee`` (owner); ``wang_wei``
is its developer. Its live history, all made through the real services and dated in
the past, includes the two cases the "why was I charged?" work starts from:

* Wang Wei charged twice for one order (the shop's server retried with a new
  idempotency key), both captured;
* a payment Li Na approved two days ago that the shop never captured: its money is
  still held, and comes back by itself when the authorization window ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from purse.assembly import Purse
from purse.audit.service import Actor
from purse.identity.principal import Principal
from purse.merchants import capture, checkout, members, payments, queries, service
from purse.merchants.rules import CaptureMethod, KeyMode, MemberRole

ACTOR = Actor(kind="operator", id="demo")
NAME_EN, NAME_ZH = "Lucky Coffee", "幸运咖啡"


@dataclass(frozen=True, slots=True)
class DemoMerchant:
    id: int
    owner_id: int


def has_shop(purse: Purse, *, owner_id: int) -> bool:
    return bool(
        purse.database.run(
            lambda session: queries.memberships(session, user_id=owner_id), write=False
        )
    )


def open_shop(purse: Purse, *, owner: Principal) -> DemoMerchant:
    """The merchant, its team (the owner, and Wang Wei as developer)."""
    owner_id = owner.wallet_user_id
    database = purse.database

    def open_it(session: Session) -> int:
        shop = service.open_merchant(
            session, user_id=owner_id, name_en=NAME_EN, name_zh=NAME_ZH, actor=ACTOR
        ).merchant.id
        members.add_member(
            session,
            merchant_id=shop,
            handle="wang_wei",
            role=MemberRole.developer,
            actor=ACTOR,
        )
        return shop

    return DemoMerchant(id=database.run(open_it), owner_id=owner_id)


def history(
    purse: Purse,
    shop: DemoMerchant,
    *,
    wang: Principal,
    li: Principal,
    now: datetime,
    unit: timedelta = timedelta(days=1),
) -> list[tuple[float, Callable[[], object]]]:
    """Live payments, back then, as (days ago, step) to play in order with the rest of the
    demo's past: two ordinary ones, the duplicate, and the one never captured.

    ``unit`` is how long a "day" of this history is: demo data made before the shop
    existed gets it in minutes, as its earlier months may be closed.
    """
    database = purse.database
    key, _secret = database.run(
        lambda session: service.create_api_key(
            session,
            cipher=purse.identity.cipher,
            merchant_id=shop.id,
            user_id=shop.owner_id,
            mode=KeyMode.live,
            name="Till (live)",
            scopes=["payments", "refunds", "read"],
            actor=ACTOR,
            now=now - timedelta(days=30),
        )
    )
    till = Principal.merchant_key(
        key_id=key.id,
        merchant_id=shop.id,
        mode="live",
        scopes=frozenset({"payments", "refunds", "read"}),
    )
    made: dict[str, str] = {}

    def pay(
        name: str, customer: Principal, amount_minor: int, order: str, what: str, days: float
    ) -> None:
        when = now - unit * days
        payment, _ = database.run(
            lambda session: payments.create_payment(
                session,
                merchant_id=shop.id,
                mode="live",
                key_id=key.id,
                idempotency_key=str(uuid.uuid4()),  # a retry with a new key: a new payment
                request=payments.PaymentRequest(
                    asset="CNY",
                    amount_minor=amount_minor,
                    description=what,
                    order_reference=order,
                    metadata={},
                    capture_method=CaptureMethod.manual,
                    approve_within_seconds=1800,
                ),
                now=when,
            )
        )
        made[name] = payment.reference
        database.run(
            lambda session: checkout.approve(
                session,
                operations=purse.operations,
                principal=customer,
                reference=payment.reference,
                idempotency_key=str(uuid.uuid4()),
                now=when + timedelta(minutes=1),
            )
        )

    def take(name: str, days: float, fulfilment: str) -> None:
        database.run(
            lambda session: capture.capture(
                session,
                operations=purse.operations,
                principal=till,
                merchant_id=shop.id,
                mode="live",
                reference=made[name],
                amount=None,
                fulfilment_reference=fulfilment,
                idempotency_key=str(uuid.uuid4()),
                now=now - unit * days,
            )
        )

    minute = 1 / 1440
    beans = "咖啡豆 coffee beans 250 g"
    return [
        (9, lambda: pay("latte", wang, 3_800, "LC-2041", "拿铁 + 可颂 latte and croissant", 9)),
        (9 - 5 * minute, lambda: take("latte", 9 - 5 * minute, "served at the counter")),
        (6, lambda: pay("flat_white", li, 2_900, "LC-2077", "flat white", 6)),
        (6 - 5 * minute, lambda: take("flat_white", 6 - 5 * minute, "served at the counter")),
        # The shop's server timed out and retried with a new idempotency key: charged twice.
        (4, lambda: pay("beans", wang, 6_400, "LC-2103", beans, 4)),
        (4 - minute, lambda: pay("beans_again", wang, 6_400, "LC-2103", beans, 4 - minute)),
        (4 - 60 * minute, lambda: take("beans", 4 - 60 * minute, "SF1234567890")),
        (4 - 61 * minute, lambda: take("beans_again", 4 - 61 * minute, "SF1234567890")),
        # Approved, never captured: held on Li Na's wallet until the window ends.
        (2, lambda: pay("cake", li, 5_800, "LC-2130", "蛋糕预订 cake order for Saturday", 2)),
    ]
