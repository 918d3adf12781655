"""Wallet operations racing on SQLite and PostgreSQL: limits hold, keys apply once, no deadlock.

The limit check sums the user's outgoing money and then moves more; only the
lock on the user's row makes that safe when requests arrive together. These
tests release many threads at once through a barrier and count what got
through: exactly what the limit allows, never a cent more.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update

from factories import make_settings, race
from purse.assembly import assemble
from purse.db import Database
from purse.errors import PurseError
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.ledger.verify import verify_ledger
from purse.operations.models import Operation
from purse.wallet import banking, service
from purse.wallet.context import Wallet
from wallet_support import add_card, balance, make_user, top_up


@pytest.fixture
def wallet(database_url: str) -> Iterator[Wallet]:
    database = Database(make_settings(database_url, simulator_settle_seconds=0, db_pool_size=24))
    yield assemble(database.settings, database=database).wallet
    report = database.run(lambda s: verify_ledger(s, hold_expiry_grace_seconds=10**9), write=False)
    assert report.ok, report.problems
    database.dispose()


def outcome(result: object) -> str:
    return result.code if isinstance(result, PurseError) else "ok"


def test_a_daily_limit_holds_under_concurrent_sends_and_withdrawals(wallet: Wallet) -> None:
    identity = wallet.identity
    wang = make_user(wallet.database, identity, handle="wang_wei", display_name="Wang Wei")
    make_user(wallet.database, identity, handle="zhang_li", display_name="Zhang Li")
    top_up(wallet, wang, amount_minor=1_000_000)  # 10,000 CNY, twice the daily limit
    card = add_card(wallet, wang)
    wallet.database.run(
        lambda s: s.execute(update(User).where(User.id == wang.user_id).values(kyc_level=0))
    )  # level 0: 5,000 CNY a day

    def act(index: int) -> object:
        key = str(uuid.uuid4())
        if index % 4 == 0:
            return wallet.database.run(
                lambda s: banking.start_withdrawal(
                    s,
                    wallet=wallet,
                    principal=wang,
                    funding_source_id=card,
                    asset="CNY",
                    amount_minor=100_000,
                    idempotency_key=key,
                )
            )
        return wallet.database.run(
            lambda s: service.send(
                s,
                wallet=wallet,
                principal=wang,
                to="zhang_li",
                asset="CNY",
                amount_minor=100_000,
                note=None,
                idempotency_key=key,
            )
        )

    results = race(16, act)
    counted = Counter(outcome(result) for result in results)
    assert counted == {"ok": 5, "limit_exceeded": 11}, counted
    spent = wallet.database.run(
        lambda s: s.scalar(
            select(func.sum(Operation.amount_minor)).where(
                Operation.user_id == wang.user_id, Operation.kind.in_(("send", "withdrawal"))
            )
        ),
        write=False,
    )
    assert spent == 500_000
    after = balance(wallet.database, wang)
    assert after is not None and after.available_minor == 500_000


def test_the_same_key_sent_together_makes_one_operation(wallet: Wallet) -> None:
    identity = wallet.identity
    wang = make_user(wallet.database, identity, handle="wang_wei", display_name="Wang Wei")
    zhang = make_user(wallet.database, identity, handle="zhang_li", display_name="Zhang Li")
    top_up(wallet, wang, amount_minor=50_000)

    def act(_index: int) -> object:
        return wallet.database.run(
            lambda s: service.send(
                s,
                wallet=wallet,
                principal=wang,
                to="zhang_li",
                asset="CNY",
                amount_minor=1_234,
                note="once",
                idempotency_key="the-same-key",
            )
        )

    results = race(12, act)
    assert all(not isinstance(result, PurseError) for result in results), results
    references = {result.operation.reference for result in results}
    assert len(references) == 1
    assert sum(1 for result in results if not result.replayed) == 1
    assert balance(wallet.database, zhang).balance_minor == 1_234  # type: ignore[union-attr]


def test_two_people_paying_each_other_at_once_never_deadlock(wallet: Wallet) -> None:
    identity = wallet.identity
    wang = make_user(wallet.database, identity, handle="wang_wei", display_name="Wang Wei")
    zhang = make_user(wallet.database, identity, handle="zhang_li", display_name="Zhang Li")
    top_up(wallet, wang, amount_minor=100_000)
    top_up(wallet, zhang, amount_minor=100_000)

    def act(index: int) -> object:
        caller, to = (wang, "zhang_li") if index % 2 else (zhang, "wang_wei")
        return wallet.database.run(
            lambda s: service.send(
                s,
                wallet=wallet,
                principal=caller,
                to=to,
                asset="CNY",
                amount_minor=100 + index,
                note=None,
                idempotency_key=str(uuid.uuid4()),
            )
        )

    results = race(16, act)
    assert Counter(outcome(result) for result in results) == {"ok": 16}
    total = sum(balance_minor(wallet, person) for person in (wang, zhang))
    assert total == 200_000


def balance_minor(wallet: Wallet, person: Principal) -> int:
    found = balance(wallet.database, person)
    assert found is not None
    return found.balance_minor
