"""Plain functions that make wallet test data through the real services."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from purse.audit.service import Actor
from purse.db import Database
from purse.funding.provider import CardDetails
from purse.identity.context import Identity
from purse.identity.models import User
from purse.identity.service import create_verified_user
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.models import Transfer
from purse.wallet import bank
from purse.wallet import service as wallet_service
from purse.wallet.context import Caller, Wallet
from purse.wallet.models import Operation
from purse.wallet.operations import account_id, user_owner

PASSWORD = "river-lamp-quiet-74"
GOOD_CARD = "4242 4242 4242 4242"
OPERATOR = Actor(kind="operator", id="tests")


def make_user(
    database: Database,
    identity: Identity,
    *,
    handle: str,
    display_name: str,
    email: str | None = None,
    phone: str | None = None,
    kyc_level: int = 1,
    locale: str = "en",
) -> Caller:
    def create(session: Session) -> int:
        user_id = create_verified_user(
            session,
            identity=identity,
            handle=handle,
            display_name=display_name,
            password=PASSWORD,
            role="user",
            locale=locale,
            actor=OPERATOR,
            email=email or f"{handle}@example.com",
            phone=phone,
        )
        session.execute(update(User).where(User.id == user_id).values(kyc_level=kyc_level))
        return user_id

    return Caller(user_id=database.run(create), session_id=None, via="operator")


def add_card(wallet: Wallet, caller: Caller, number: str = GOOD_CARD) -> int:
    source = wallet.database.run(
        lambda session: wallet_service.add_funding_source(
            session,
            wallet=wallet,
            caller=caller,
            card=CardDetails(
                number=number, expiry_month=12, expiry_year=2099, holder_name="Wang Wei"
            ),
        )
    )
    return source.id


def top_up(
    wallet: Wallet, caller: Caller, *, amount_minor: int, asset: str = "CNY", card: str = GOOD_CARD
) -> Operation:
    """A completed top-up, through the simulator and its callback."""
    source_id = add_card(wallet, caller, card)
    started = wallet.database.run(
        lambda session: bank.start_top_up(
            session,
            wallet=wallet,
            caller=caller,
            funding_source_id=source_id,
            asset=asset,
            amount_minor=amount_minor,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    bank.submit_to_provider(wallet, operation_id=started.operation.id)
    wallet.simulator.settle_due()
    return operation(wallet.database, started.operation.id)


def operation(database: Database, operation_id: int) -> Operation:
    return database.run(lambda s: s.get_one(Operation, operation_id), write=False)


def balance(database: Database, caller: Caller, asset: str = "CNY") -> ledger.AccountRecord | None:
    def read(session: Session) -> ledger.AccountRecord | None:
        found = account_id(session, owner=user_owner(caller.user_id), asset=asset, create=False)
        return ledger_queries.get_account(session, account_id=found) if found is not None else None

    return database.run(read, write=False)


def counts(database: Database) -> tuple[int, int]:
    """(operations, transfers): a refused request must change neither."""
    return database.run(
        lambda s: (
            int(s.scalar(select(func.count()).select_from(Operation)) or 0),
            int(s.scalar(select(func.count()).select_from(Transfer)) or 0),
        ),
        write=False,
    )
