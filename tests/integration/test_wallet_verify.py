"""The wallet's part of the ledger check: each completed money event told its user once."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from factories import make_settings
from purse.assembly import assemble
from purse.db import Database
from purse.ledger.verify import VerifyReport
from purse.notify.models import OutboxMessage
from purse.notify.service import enqueue
from purse.operations.verify import check_operations
from purse.wallet import service
from wallet_support import make_user, top_up


def report_of(database: Database) -> VerifyReport:
    report = VerifyReport()
    database.run(lambda session: check_operations(session, report), write=False)
    return report


def test_a_money_event_without_its_message_is_found_and_a_second_one_refused(
    database_url: str,
) -> None:
    database = Database(make_settings(database_url, simulator_settle_seconds=0))
    wallet = assemble(database.settings, database=database).wallet
    try:
        wang = make_user(
            database,
            wallet.identity,
            handle="wang_wei",
            display_name="Wang Wei",
            email="wang.wei@example.com",
        )
        make_user(
            database,
            wallet.identity,
            handle="li_na",
            display_name="Li Na",
            email="li.na@example.com",
        )
        top_up(wallet, wang, amount_minor=5_000)
        sent = database.run(
            lambda session: service.send(
                session,
                wallet=wallet,
                principal=wang,
                to="li_na",
                asset="CNY",
                amount_minor=1_200,
                note=None,
                idempotency_key="verify-1",
            )
        )
        assert report_of(database).ok
        key = f"{sent.operation.reference}:money_received"
        # The same event and channel cannot be told twice.
        with pytest.raises(IntegrityError):
            database.run(
                lambda session: enqueue(
                    session,
                    cipher=wallet.identity.cipher,
                    user_id=None,
                    channel="email",
                    recipient="li.na@example.com",
                    template="money_received",
                    locale="en",
                    data={},
                    event_key=key,
                )
            )
        # A completed send whose message is gone is reported.
        database.run(
            lambda s: s.execute(delete(OutboxMessage).where(OutboxMessage.event_key == key))
        )
        report = report_of(database)
        assert [(p.check, p.data) for p in report.problems] == [
            ("notifications", {"kind": "send", "party": "counterparty", "count": 1})
        ]
        left = database.run(
            lambda s: list(
                s.scalars(
                    select(OutboxMessage.event_key).where(OutboxMessage.event_key.is_not(None))
                )
            ),
            write=False,
        )
        # What is left: the top-up's notice, and the payer's (every debit tells its owner).
        templates = {str(key).rpartition(":")[2] for key in left}
        assert templates == {"top_up_completed", "money_sent"}
    finally:
        database.dispose()
