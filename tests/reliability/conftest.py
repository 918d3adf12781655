"""Fixtures of the reliability suite: seeded databases (as an operator would seed them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial

import pytest
from harness import close_all
from sqlalchemy import update
from sqlalchemy.orm import Session

from factories import make_settings
from purse.assembly import assemble
from purse.db import Database
from purse.identity.models import User
from wallet_support import make_user, top_up


def seed(
    database_url: str,
    *,
    people: dict[str, int],
    admins: Iterable[str] = (),
    emails: bool = False,
) -> None:
    """Users with a CNY balance each (topped up through the simulator), and admins.

    With ``emails``, each person has the address ``<handle>@example.com``.
    """
    database = Database(make_settings(database_url, simulator_settle_seconds=0))
    wallet = assemble(database.settings, database=database).wallet
    try:
        for handle, balance_minor in people.items():
            caller = make_user(
                database,
                wallet.identity,
                handle=handle,
                display_name=handle.title(),
                kyc_level=2,
                email=f"{handle}@example.com" if emails else None,
            )
            while balance_minor > 0:  # top-ups are capped per transfer by the KYC limits
                step = min(balance_minor, 10_000_000)
                top_up(wallet, caller, amount_minor=step)
                balance_minor -= step
        for handle in admins:
            make_user(database, wallet.identity, handle=handle, display_name=handle.title())
            database.run(partial(_make_admin, handle=handle))
    finally:
        database.dispose()


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every client a test opened is closed after it, passed or failed."""
    yield
    close_all()


@pytest.fixture
def seeded(database_url: str) -> Callable[..., None]:
    return lambda **kwargs: seed(database_url, **kwargs)


@pytest.fixture
def database_kind(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


def _make_admin(session: Session, *, handle: str) -> None:
    session.execute(update(User).where(User.handle == handle).values(role="admin"))
