"""Wallet use cases on SQLite and PostgreSQL: send, request, convert, and each refusal.

Every test ends with the ledger check (conftest). A refused operation must leave
no operation and no transfer behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import make_settings
from purse.assembly import assemble
from purse.db import Database
from purse.errors import PurseError
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.rules import AccountStatus
from purse.models import utc_now
from purse.notify.models import OutboxMessage
from purse.operations import rules as operation_rules
from purse.operations.accounts import account_id, user_owner
from purse.operations.models import OperationEvent
from purse.wallet import conversion, service
from purse.wallet.context import Wallet
from purse.wallet.models import MoneyRequest
from wallet_support import balance, counts, make_user, top_up


@pytest.fixture
def wallet(database_url: str) -> Iterator[Wallet]:
    from purse.ledger.verify import verify_ledger

    database = Database(make_settings(database_url, simulator_settle_seconds=0))
    yield assemble(database.settings, database=database).wallet
    report = database.run(lambda s: verify_ledger(s, hold_expiry_grace_seconds=10**9), write=False)
    assert report.ok, report.problems
    database.dispose()


@pytest.fixture
def people(wallet: Wallet) -> tuple[Principal, Principal]:
    identity = wallet.identity
    wang = make_user(wallet.database, identity, handle="wang_wei", display_name="Wang Wei")
    zhang = make_user(wallet.database, identity, handle="zhang_li", display_name="Zhang Li")
    return wang, zhang


def send(wallet: Wallet, caller: Principal, key: str | None = None, **changes: Any) -> object:
    arguments: dict[str, Any] = {
        "to": "zhang_li",
        "asset": "CNY",
        "amount_minor": 1000,
        "note": "lunch",
        "idempotency_key": key or str(uuid.uuid4()),
    }
    arguments.update(changes)
    return wallet.database.run(
        lambda session: service.send(session, wallet=wallet, principal=caller, **arguments)
    )


def test_send_moves_money_once_and_tells_the_recipient(
    wallet: Wallet, people: tuple[Principal, Principal]
) -> None:
    wang, zhang = people
    top_up(wallet, wang, amount_minor=50_000)
    result = send(wallet, wang, key="lunch-1", to="zhang_li@example.com", amount_minor=2_550)
    operation = result.operation  # type: ignore[attr-defined]
    assert operation.status == "completed" and operation.counterparty_user_id == zhang.user_id
    assert operation.reference.startswith("PW") and len(operation.reference) == 12
    assert balance(wallet.database, wang).balance_minor == 47_450  # type: ignore[union-attr]
    assert balance(wallet.database, zhang).balance_minor == 2_550  # type: ignore[union-attr]

    again = send(wallet, wang, key="lunch-1", to="zhang_li@example.com", amount_minor=2_550)
    assert again.replayed and again.operation.reference == operation.reference  # type: ignore[attr-defined]
    assert balance(wallet.database, wang).balance_minor == 47_450  # type: ignore[union-attr]
    with pytest.raises(PurseError) as reused:
        send(wallet, wang, key="lunch-1", to="zhang_li@example.com", amount_minor=2_551)
    assert reused.value.code == "idempotency_key_reused"

    templates = wallet.database.run(
        lambda s: list(
            s.scalars(select(OutboxMessage.template).where(OutboxMessage.user_id == zhang.user_id))
        ),
        write=False,
    )
    assert templates.count("money_received") == 1  # one channel (email) for one send
    events = wallet.database.run(
        lambda s: list(
            s.scalars(
                select(OperationEvent.event)
                .where(OperationEvent.operation_id == operation.id)
                .order_by(OperationEvent.id)
            )
        ),
        write=False,
    )
    assert events == ["created", "posted"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount_minor": 60_000}, "insufficient_funds"),
        ({"to": "nobody_here"}, "recipient_not_found"),
        ({"to": "+8613900139000"}, "recipient_not_found"),
        ({"to": "wang_wei"}, "recipient_is_self"),
        ({"asset": "GBP"}, "asset_not_offered"),
        ({"asset": "XYZ"}, "asset_unknown"),
        ({"note": "x" * 141}, "note_too_long"),
        ({"amount_minor": 2_000_001}, "limit_exceeded"),
        ({"idempotency_key": ""}, "idempotency_key_invalid"),
    ],
)
def test_a_refused_send_changes_nothing(
    wallet: Wallet, people: tuple[Principal, Principal], changes: dict[str, Any], code: str
) -> None:
    wang, _ = people
    top_up(wallet, wang, amount_minor=50_000)
    before = counts(wallet.database)
    with pytest.raises(PurseError) as refused:
        send(wallet, wang, **changes)
    assert refused.value.code == code
    assert counts(wallet.database) == before


def test_limits_count_the_day_and_say_what_is_left(
    wallet: Wallet, people: tuple[Principal, Principal]
) -> None:
    wang, _ = people
    top_up(wallet, wang, amount_minor=600_000)
    wallet.database.run(
        lambda s: s.get_one(User, wang.user_id).__setattr__("kyc_level", 0)
    )  # level 0: CNY 2,000 a transfer, 5,000 a day
    for _ in range(2):
        send(wallet, wang, amount_minor=200_000)
    with pytest.raises(PurseError) as refused:
        send(wallet, wang, amount_minor=100_001)
    assert refused.value.code == "limit_exceeded"
    assert refused.value.data["period"] == "per_day"
    assert refused.value.message("en") == (
        "This would go over your daily limit of CN¥5,000.00; CN¥1,000.00 is left."
    )
    assert "每日" in refused.value.message("zh-CN")
    send(wallet, wang, amount_minor=100_000)  # exactly what is left


def test_recipient_that_cannot_receive(wallet: Wallet, people: tuple[Principal, Principal]) -> None:
    wang, zhang = people
    top_up(wallet, wang, amount_minor=5_000)
    wallet.database.run(lambda s: s.get_one(User, zhang.user_id).__setattr__("status", "disabled"))
    with pytest.raises(PurseError) as refused:
        send(wallet, wang)
    assert refused.value.code == "recipient_cannot_receive"


@pytest.mark.parametrize("whose", ["recipient", "sender"])
def test_a_closed_wallet_moves_nothing_and_says_whose_it_is(
    wallet: Wallet, people: tuple[Principal, Principal], whose: str
) -> None:
    wang, zhang = people
    top_up(wallet, wang, amount_minor=5_000)
    send(wallet, wang, amount_minor=1_000)  # both wallets are open

    def close(session: Session) -> None:
        # A wallet closes only when it is empty: its owner sends everything back first.
        owner, other = (zhang, "wang_wei") if whose == "recipient" else (wang, "zhang_li")
        found = account_id(session, owner=user_owner(owner.wallet_user_id), asset="CNY")
        assert found is not None
        left = ledger_queries.get_account(session, account_id=found).balance_minor
        service.send(
            session,
            wallet=wallet,
            principal=owner,
            to=other,
            asset="CNY",
            amount_minor=left,
            note=None,
            idempotency_key="empty-it",
        )
        ledger.set_account_status(session, account_id=found, status=AccountStatus.closed)

    wallet.database.run(close)
    before = counts(wallet.database)
    with pytest.raises(PurseError) as refused:
        send(wallet, wang, amount_minor=500)
    expected = "recipient_cannot_receive" if whose == "recipient" else "account_closed"
    assert refused.value.code == expected
    assert counts(wallet.database) == before


def test_find_recipient_shows_a_masked_name(
    wallet: Wallet, people: tuple[Principal, Principal]
) -> None:
    wang, zhang = people
    found = wallet.database.run(
        lambda s: service.find_recipient(s, wallet=wallet, principal=wang, to="@Zhang_Li")
    )
    assert (found.user_id, found.handle, found.masked_name) == (
        zhang.user_id,
        "zhang_li",
        "Z*** L***",
    )


def request_money(wallet: Wallet, requester: Principal, **changes: object) -> MoneyRequest:
    arguments: dict[str, object] = {
        "payer": "wang_wei",
        "asset": "CNY",
        "amount_minor": 3_000,
        "note": "cinema",
    }
    arguments.update(changes)
    return wallet.database.run(
        lambda s: service.request_money(s, wallet=wallet, principal=requester, **arguments)  # type: ignore[arg-type]
    )


def test_money_request_paid_declined_cancelled_and_expired(
    wallet: Wallet, people: tuple[Principal, Principal]
) -> None:
    wang, zhang = people
    top_up(wallet, wang, amount_minor=10_000)
    asked = request_money(wallet, zhang)
    paid = wallet.database.run(
        lambda s: service.pay_request(
            s, wallet=wallet, principal=wang, request_id=asked.id, idempotency_key="pay-1"
        )
    )
    assert paid.operation.money_request_id == asked.id and paid.operation.note == "cinema"
    assert balance(wallet.database, zhang).balance_minor == 3_000  # type: ignore[union-attr]
    replay = wallet.database.run(
        lambda s: service.pay_request(
            s, wallet=wallet, principal=wang, request_id=asked.id, idempotency_key="pay-1"
        )
    )
    assert replay.replayed and replay.operation.id == paid.operation.id
    with pytest.raises(PurseError) as again:
        wallet.database.run(
            lambda s: service.pay_request(
                s, wallet=wallet, principal=wang, request_id=asked.id, idempotency_key="pay-2"
            )
        )
    assert again.value.code == "money_request_not_open"

    # Only the payer may pay or decline; the requester sees someone else's request as missing.
    second = request_money(wallet, zhang, amount_minor=500)
    with pytest.raises(PurseError) as not_theirs:
        wallet.database.run(
            lambda s: service.pay_request(
                s, wallet=wallet, principal=zhang, request_id=second.id, idempotency_key="k"
            )
        )
    assert not_theirs.value.code == "money_request_not_found"
    declined = wallet.database.run(
        lambda s: service.answer_request(s, principal=wang, request_id=second.id, answer="declined")
    )
    assert declined.status == "declined"

    third = request_money(wallet, zhang, amount_minor=700)
    cancelled = wallet.database.run(
        lambda s: service.answer_request(
            s, principal=zhang, request_id=third.id, answer="cancelled"
        )
    )
    assert cancelled.status == "cancelled"

    fourth = request_money(wallet, zhang, amount_minor=900)
    later = utc_now() + timedelta(days=8)
    with pytest.raises(PurseError) as late:
        wallet.database.run(
            lambda s: service.pay_request(
                s,
                wallet=wallet,
                principal=wang,
                request_id=fourth.id,
                idempotency_key="k4",
                now=later,
            )
        )
    assert late.value.code == "money_request_expired"
    assert wallet.database.run(lambda s: service.expire_requests(s, now=later)) == 1
    with pytest.raises(PurseError) as to_self:
        request_money(wallet, zhang, payer="zhang_li")
    assert to_self.value.code == "money_request_to_self"


def test_convert_at_the_quoted_price_with_the_spread_to_revenue(
    wallet: Wallet, people: tuple[Principal, Principal]
) -> None:
    wang, zhang = people
    top_up(wallet, wang, amount_minor=100_000)
    wallet.database.run(
        lambda s: conversion.set_rate(
            s, base_asset="USD", quote_asset="CNY", rate="7.2", updated_by="tests"
        )
    )
    quoted = wallet.database.run(
        lambda s: conversion.quote(
            s, wallet=wallet, principal=wang, from_asset="CNY", to_asset="USD", amount_minor=72_000
        )
    )
    # 720.00 CNY at 1/7.2 = 100.00 USD; less 0.5% = 99.50 USD; purse keeps 0.50.
    assert (quoted.to_amount_minor, quoted.spread_minor) == (9_950, 50)
    converted = wallet.database.run(
        lambda s: conversion.convert(
            s, wallet=wallet, principal=wang, quote_id=quoted.id, idempotency_key="fx-1"
        )
    )
    assert converted.operation.to_amount_minor == 9_950
    assert balance(wallet.database, wang, "CNY").balance_minor == 28_000  # type: ignore[union-attr]
    assert balance(wallet.database, wang, "USD").balance_minor == 9_950  # type: ignore[union-attr]

    with pytest.raises(PurseError) as used:
        wallet.database.run(
            lambda s: conversion.convert(
                s, wallet=wallet, principal=wang, quote_id=quoted.id, idempotency_key="fx-2"
            )
        )
    assert used.value.code == "quote_used"
    stale = wallet.database.run(
        lambda s: conversion.quote(
            s, wallet=wallet, principal=wang, from_asset="CNY", to_asset="USD", amount_minor=1_000
        )
    )
    before = counts(wallet.database)
    for caller, now, code in [
        (wang, utc_now() + timedelta(seconds=61), "quote_expired"),
        (zhang, None, "quote_not_found"),
    ]:
        with pytest.raises(PurseError) as refused:
            wallet.database.run(
                partial(
                    conversion.convert,
                    wallet=wallet,
                    principal=caller,
                    quote_id=stale.id,
                    idempotency_key="fx-3",
                    now=now,
                )
            )
        assert refused.value.code == code
    assert counts(wallet.database) == before


@pytest.mark.parametrize(
    ("from_asset", "to_asset", "amount_minor", "code"),
    [
        ("CNY", "CNY", 100, "conversion_same_asset"),
        ("CNY", "EUR", 100, "fx_rate_unavailable"),
        ("CNY", "JPY", 1, "conversion_too_small"),
    ],
)
def test_quotes_that_cannot_be_given(
    wallet: Wallet,
    people: tuple[Principal, Principal],
    from_asset: str,
    to_asset: str,
    amount_minor: int,
    code: str,
) -> None:
    wang, _ = people
    wallet.database.run(
        lambda s: conversion.set_rate(
            s, base_asset="CNY", quote_asset="JPY", rate="0.5", updated_by="tests"
        )
    )
    with pytest.raises(PurseError) as refused:
        wallet.database.run(
            lambda s: conversion.quote(
                s,
                wallet=wallet,
                principal=wang,
                from_asset=from_asset,
                to_asset=to_asset,
                amount_minor=amount_minor,
            )
        )
    assert refused.value.code == code


@pytest.mark.parametrize("second_amount", [1_000, 1_500], ids=["same", "other"])
def test_a_reference_drawn_twice_moves_the_money_once_under_another(
    wallet: Wallet,
    people: tuple[Principal, Principal],
    monkeypatch: pytest.MonkeyPatch,
    second_amount: int,
) -> None:
    """A send posts before it writes its operation. If its fresh reference were one already
    used (once in 10^15), the ledger would find that reference's keys: with the same
    transfer it would replay it, with another refuse it. Either way the send must run
    again under a new reference, and move its money once."""
    wang, zhang = people
    top_up(wallet, wang, amount_minor=10_000)
    drawn = iter(["PW0000000001", "PW0000000001", "PW0000000002"])
    monkeypatch.setattr(operation_rules, "new_reference", lambda: next(drawn))
    first = send(wallet, wang, amount_minor=1_000).operation  # type: ignore[attr-defined]
    second = send(wallet, wang, amount_minor=second_amount).operation  # type: ignore[attr-defined]
    assert (first.reference, second.reference) == ("PW0000000001", "PW0000000002")
    assert balance(wallet.database, zhang).balance_minor == 1_000 + second_amount  # type: ignore[union-attr]
    assert balance(wallet.database, wang).balance_minor == 9_000 - second_amount  # type: ignore[union-attr]
