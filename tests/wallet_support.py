"""Plain functions that make wallet test data through the real services."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from purse.assembly import Purse, assemble
from purse.audit.service import Actor
from purse.db import Database
from purse.funding import service as funding_service
from purse.funding.provider import CardDetails
from purse.identity.context import Identity
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.identity.sessions import Authenticated, authenticate, start_session
from purse.identity.signup import create_verified_user
from purse.ledger import queries as ledger_queries
from purse.ledger.models import Transfer
from purse.operations.accounts import account_id, user_owner
from purse.operations.models import Operation
from purse.wallet import banking
from purse.wallet.context import Wallet

PASSWORD = "river-lamp-quiet-74"
GOOD_CARD = "4242 4242 4242 4242"
OPERATOR = Actor(kind="operator", id="tests")


def assembled(database: Database) -> Purse:
    """purse assembled on a test's database, as the app and the worker assemble it."""
    return assemble(database.settings, database=database)


def signed_in(database: Database, user_id: int, *, auth_method: str = "password") -> Principal:
    """The user signed in on the web, as a principal (a real session, like a browser's)."""
    return Principal.of_session(web_session(database, user_id, auth_method=auth_method))


def web_session(
    database: Database, user_id: int, *, auth_method: str = "password"
) -> Authenticated:
    """A real web session of the user, as a request presenting its cookie gets it."""
    settings = database.settings
    issued, _new = database.run(
        lambda session: start_session(
            session,
            settings=settings,
            user_id=user_id,
            kind="web",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 pytest",
            actor=OPERATOR,
            auth_method=auth_method,
        )
    )
    return database.run(
        lambda session: authenticate(session, settings=settings, token=issued.token, kind="web")
    )


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
) -> Principal:
    """A verified user at ``kyc_level``, signed in: the principal their requests act as."""

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

    return signed_in(database, database.run(create))


def add_card(wallet: Wallet, principal: Principal, number: str = GOOD_CARD) -> int:
    source = wallet.database.run(
        lambda session: funding_service.add_funding_source(
            session,
            funding=wallet.funding,
            cipher=wallet.identity.cipher,
            principal=principal,
            card=CardDetails(
                number=number, expiry_month=12, expiry_year=2099, holder_name="Wang Wei"
            ),
        )
    )
    return int(source.id)


def top_up(
    wallet: Wallet,
    principal: Principal,
    *,
    amount_minor: int,
    asset: str = "CNY",
    card: str = GOOD_CARD,
) -> Operation:
    """A completed top-up, through the simulator and its callback."""
    source_id = add_card(wallet, principal, card)
    started = wallet.database.run(
        lambda session: banking.start_top_up(
            session,
            wallet=wallet,
            principal=principal,
            funding_source_id=source_id,
            asset=asset,
            amount_minor=amount_minor,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    banking.submit_to_provider(wallet, operation_id=started.operation.id)
    wallet.simulator.settle_due()
    return operation(wallet.database, started.operation.id)


def operation(database: Database, operation_id: int) -> Operation:
    return database.run(lambda s: s.get_one(Operation, operation_id), write=False)


def balance(
    database: Database, principal: Principal, asset: str = "CNY"
) -> ledger_queries.AccountRecord | None:
    assert principal.user_id is not None

    def read(session: Session) -> ledger_queries.AccountRecord | None:
        found = account_id(
            session, owner=user_owner(principal.user_id or 0), asset=asset, create=False
        )
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
