"""Running spending totals: the limits read them, failures are taken back, verify checks them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import select, text

from factories import make_settings
from purse import migrate
from purse.assembly import Purse, assemble
from purse.db import Database
from purse.errors import PurseError
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.operations import rules, spending
from purse.operations.models import SpendingSlot
from purse.wallet import banking, service
from wallet_support import add_card, make_user, top_up

DECLINED_AT_ONCE = "4000000000000002"


@pytest.fixture
def purse(database_url: str) -> Iterator[Purse]:
    database = Database(make_settings(database_url, simulator_settle_seconds=0))
    yield assemble(database.settings, database=database)
    database.dispose()


def person(purse: Purse, handle: str) -> Principal:
    return make_user(purse.database, purse.wallet.identity, handle=handle, display_name=handle)


def send(purse: Purse, caller: Principal, amount_minor: int) -> None:
    purse.database.run(
        lambda s: service.send(
            s,
            wallet=purse.wallet,
            principal=caller,
            to="zhang_li",
            asset="CNY",
            amount_minor=amount_minor,
            note=None,
            idempotency_key=str(uuid.uuid4()),
        )
    )


def spent(purse: Purse, caller: Principal) -> tuple[int, int]:
    day, month = rules.period_starts(utc_now(), purse.settings.timezone)
    return purse.database.run(
        lambda s: spending.spent_since(
            s, user_id=caller.wallet_user_id, asset="CNY", day_start=day, month_start=month
        ),
        write=False,
    )


def verify_problems(purse: Purse) -> list[str]:
    report = purse.database.run(purse.verify, write=False)
    return [problem.check for problem in report.problems]


def test_a_failed_withdrawal_gives_its_amount_back_to_the_limits(purse: Purse) -> None:
    wang, _ = person(purse, "wang_wei"), person(purse, "zhang_li")
    top_up(purse.wallet, wang, amount_minor=900_000)
    purse.database.run(lambda s: s.get_one(User, wang.user_id).__setattr__("kyc_level", 0))
    # Level 0: CNY 2,000 a transfer, CNY 5,000 a day.
    card = add_card(purse.wallet, wang, DECLINED_AT_ONCE)
    refused = purse.database.run(
        lambda s: banking.start_withdrawal(
            s,
            wallet=purse.wallet,
            principal=wang,
            funding_source_id=card,
            asset="CNY",
            amount_minor=200_000,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    banking.submit_to_provider(purse.wallet, operation_id=refused.operation.id)
    assert purse.wallet.simulator.settle_due() == 0
    assert spent(purse, wang) == (0, 0)  # written, counted, failed, taken back
    for amount in (200_000, 200_000, 100_000):
        send(purse, wang, amount)
    assert spent(purse, wang) == (500_000, 500_000)
    with pytest.raises(PurseError) as over:
        send(purse, wang, 1)
    assert over.value.code == "limit_exceeded"
    assert verify_problems(purse) == []


def test_verify_finds_a_running_total_that_disagrees(purse: Purse) -> None:
    wang, _ = person(purse, "wang_wei"), person(purse, "zhang_li")
    top_up(purse.wallet, wang, amount_minor=10_000)
    send(purse, wang, 2_500)
    assert verify_problems(purse) == []
    purse.database.run(
        lambda s: s.execute(text("UPDATE operation_spending SET amount_minor = amount_minor + 1"))
    )
    assert verify_problems(purse) == ["spending_totals"]


def test_the_migration_fills_the_totals_from_the_operations_there_are(purse: Purse) -> None:
    wang, _ = person(purse, "wang_wei"), person(purse, "zhang_li")
    top_up(purse.wallet, wang, amount_minor=10_000)
    for amount in (1_000, 2_000, 3_000):
        send(purse, wang, amount)

    def slots() -> list[tuple[int, str, object, int]]:
        return purse.database.run(
            lambda s: [
                (r.user_id, r.asset, r.slot_start, r.amount_minor)
                for r in s.scalars(select(SpendingSlot))
            ],
            write=False,
        )

    written = slots()
    assert sum(row[3] for row in written) == 6_000
    config = migrate._config()
    with purse.database.engine.connect() as connection, connection.begin():
        config.attributes["connection"] = connection
        command.downgrade(config, "0012_history_indexes")
    migrate.upgrade(purse.database)
    assert slots() == written
    assert verify_problems(purse) == []
