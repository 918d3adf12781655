"""``purse serve --demo``: two people with money and history, so every feature can be tried at once.

Everything is made through the real services (sign-up, funding sources, the
simulator's bank, sends, conversions, requests), so the demo's ledger verifies
like any other. Seeding is skipped when the demo users already exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from purse.assembly import Purse
from purse.audit.service import Actor
from purse.demo import merchant
from purse.funding import service as funding_service
from purse.funding.provider import Answer, AnswerStatus, BankAccountDetails, CardDetails
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.identity.signup import create_verified_user
from purse.models import utc_now
from purse.wallet import banking, conversion, service
from purse.wallet.context import Wallet

DEMO_PASSWORD = "purse-demo-lantern-42"  # noqa: S105 - printed to whoever runs the demo
RATES = {
    ("USD", "CNY"): "7.21",
    ("EUR", "CNY"): "7.83",
    ("HKD", "CNY"): "0.926",
    ("CNY", "JPY"): "20.9",
    ("EUR", "USD"): "1.086",
}


@dataclass(frozen=True, slots=True)
class DemoUser:
    handle: str
    display_name: str
    email: str
    phone: str | None
    locale: str


WANG = DemoUser("wang_wei", "Wang Wei", "wang.wei@example.com", "+8613800138000", "zh-CN")
LI = DemoUser("li_na", "Li Na", "li.na@example.com", "+8613900139000", "en")
SHOP = DemoUser("lucky_coffee", "Lucky Coffee", "hello@lucky-coffee.example", None, "zh-CN")
OPERATOR = Actor(kind="operator", id="demo")


def seed(purse: Purse, *, now: datetime | None = None) -> bool:
    """Make the demo data; returns False if it was already there.

    Everything the demo people "did" is recorded as done by the demo seeder
    (``Principal.demo``), not as if they had signed in: their history says so.
    """
    wallet = purse.wallet
    database = wallet.database
    now = now or utc_now()
    if database.run(
        lambda session: session.scalar(select(User.id).where(User.handle == WANG.handle)),
        write=False,
    ):
        return _add_the_shop(purse, now=now)

    wang, li, shop = (_user(wallet, person) for person in (WANG, LI, SHOP))
    for (base, counter), rate in RATES.items():
        database.run(
            partial(
                conversion.set_rate,
                base_asset=base,
                quote_asset=counter,
                rate=rate,
                updated_by="demo",
            )
        )

    visa = _card(wallet, wang, "4242424242424242", "Wang Wei")
    _card(wallet, wang, "4000000000000002", "Wang Wei")  # the bank refuses this one
    slow_bank = _account(wallet, wang, "China Merchants Bank", "6214830100003220", "Wang Wei")
    master = _card(wallet, li, "5555555555554444", "Li Na")
    _account(wallet, li, "HSBC Hong Kong", "400123456789", "Li Na")
    shop_bank = _account(wallet, shop, "Bank of China", "6217850000001234", "Lucky Coffee")

    def at(days: int, hours: int = 0) -> datetime:
        return now - timedelta(days=days, hours=hours)

    # (days ago, what happened), played oldest first so the activity reads in order.
    sends = [
        (120, wang, "lucky_coffee", 3_200, "拿铁 latte"),
        (118, wang, "li_na", 45_000, "rent share"),
        (95, li, "wang_wei", 12_800, "dinner"),
        (90, wang, "lucky_coffee", 5_600, "早餐 breakfast"),
        (60, wang, "li_na", 20_000, "concert tickets"),
        (33, wang, "lucky_coffee", 4_800, "coffee beans"),
        (20, li, "lucky_coffee", 2_900, "flat white"),
        (12, wang, "li_na", 8_800, "taxi"),
        (2, wang, "lucky_coffee", 3_600, "拿铁 latte"),
        (1, li, "wang_wei", 6_600, "movie"),
    ]
    lucky = merchant.open_shop(purse, owner=shop)
    timeline: list[tuple[float, Callable[[], object]]] = [
        (150, partial(_top_up, wallet, wang, visa, "CNY", 800_000, at(150))),
        (140, partial(_top_up, wallet, li, master, "USD", 150_000, at(140))),
        (139, partial(_top_up, wallet, li, master, "CNY", 200_000, at(139))),
        (40, partial(_convert, wallet, wang, "CNY", "USD", 72_100, at(40))),
        (3, partial(_withdraw, wallet, shop, shop_bank, 10_000, at(3))),
    ]
    timeline += merchant.history(purse, lucky, wang=wang, li=li, now=now)
    for days, sender, to, amount_minor, note in sends:
        send = partial(
            service.send,
            wallet=wallet,
            principal=sender,
            to=to,
            asset="CNY",
            amount_minor=amount_minor,
            note=note,
            idempotency_key=str(uuid.uuid4()),
            now=at(days),
        )
        timeline.append((days, partial(database.run, send)))
    for _days, happen in sorted(timeline, key=lambda item: -item[0]):
        happen()
    # Wang asks the slow bank for money: still pending when the demo starts.
    pending = database.run(
        lambda session: banking.start_withdrawal(
            session,
            wallet=wallet,
            principal=wang,
            funding_source_id=slow_bank,
            asset="CNY",
            amount_minor=30_000,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    banking.submit_to_provider(wallet, operation_id=pending.operation.id)
    database.run(
        lambda session: service.request_money(
            session,
            wallet=wallet,
            principal=li,
            payer="wang_wei",
            asset="CNY",
            amount_minor=15_000,
            note="hotpot on Friday",
        )
    )
    return True


def _user(wallet: Wallet, person: DemoUser) -> Principal:
    def create(session: Session) -> int:
        user_id = create_verified_user(
            session,
            identity=wallet.identity,
            handle=person.handle,
            display_name=person.display_name,
            password=DEMO_PASSWORD,
            role="user",
            locale=person.locale,
            actor=OPERATOR,
            email=person.email,
            phone=person.phone,
        )
        session.execute(update(User).where(User.id == user_id).values(kyc_level=1))
        return user_id

    return Principal.demo(wallet.database.run(create))


def _card(wallet: Wallet, principal: Principal, number: str, holder: str) -> int:
    card = CardDetails(
        number=number, expiry_month=12, expiry_year=utc_now().year + 3, holder_name=holder
    )
    source = wallet.database.run(
        lambda session: funding_service.add_funding_source(
            session,
            funding=wallet.funding,
            cipher=wallet.identity.cipher,
            principal=principal,
            card=card,
        )
    )
    return int(source.id)


def _account(wallet: Wallet, principal: Principal, bank_name: str, number: str, holder: str) -> int:
    account = BankAccountDetails(bank_name=bank_name, account_number=number, holder_name=holder)
    source = wallet.database.run(
        lambda session: funding_service.add_funding_source(
            session,
            funding=wallet.funding,
            cipher=wallet.identity.cipher,
            principal=principal,
            bank_account=account,
        )
    )
    return int(source.id)


def _settled(wallet: Wallet, operation_id: int, when: datetime) -> None:
    """The bank said yes, back then (the demo's past is not replayed through the simulator)."""
    wallet.database.run(
        lambda session: banking.apply_answer(
            session,
            wallet=wallet,
            operation_id=operation_id,
            answer=Answer(status=AnswerStatus.succeeded, provider_reference="demo"),
            now=when,
        )
    )


def _top_up(
    wallet: Wallet,
    principal: Principal,
    source_id: int,
    asset: str,
    amount_minor: int,
    when: datetime,
) -> None:
    started = wallet.database.run(
        lambda session: banking.start_top_up(
            session,
            wallet=wallet,
            principal=principal,
            funding_source_id=source_id,
            asset=asset,
            amount_minor=amount_minor,
            idempotency_key=str(uuid.uuid4()),
            now=when,
        )
    )
    _settled(wallet, started.operation.id, when)


def _convert(
    wallet: Wallet,
    principal: Principal,
    source: str,
    target: str,
    amount_minor: int,
    when: datetime,
) -> None:
    quote = wallet.database.run(
        lambda session: conversion.quote(
            session,
            wallet=wallet,
            principal=principal,
            from_asset=source,
            to_asset=target,
            amount_minor=amount_minor,
            now=when,
        )
    )
    wallet.database.run(
        lambda session: conversion.convert(
            session,
            wallet=wallet,
            principal=principal,
            quote_id=quote.id,
            idempotency_key=str(uuid.uuid4()),
            now=when,
        )
    )


def _withdraw(
    wallet: Wallet, principal: Principal, source_id: int, amount_minor: int, when: datetime
) -> None:
    started = wallet.database.run(
        lambda session: banking.start_withdrawal(
            session,
            wallet=wallet,
            principal=principal,
            funding_source_id=source_id,
            asset="CNY",
            amount_minor=amount_minor,
            idempotency_key=str(uuid.uuid4()),
            now=when,
        )
    )
    _settled(wallet, started.operation.id, when)


def _add_the_shop(purse: Purse, *, now: datetime) -> bool:
    """Demo data made before the shop took payments: add the shop and its history."""
    database = purse.database
    people = database.run(
        lambda session: dict(
            session.execute(
                select(User.handle, User.id).where(
                    User.handle.in_((WANG.handle, LI.handle, SHOP.handle))
                )
            ).all()
        ),
        write=False,
    )
    if len(people) < 3 or merchant.has_shop(purse, owner_id=people[SHOP.handle]):
        return False
    wang, li, shop = (Principal.demo(people[p.handle]) for p in (WANG, LI, SHOP))
    lucky = merchant.open_shop(purse, owner=shop)
    for _days, happen in sorted(
        merchant.history(purse, lucky, wang=wang, li=li, now=now, unit=timedelta(minutes=1)),
        key=lambda item: -item[0],
    ):
        happen()
    return True
