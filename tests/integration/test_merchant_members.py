"""A merchant's team under concurrency: two owners stepping down at once leave one owner."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import race
from purse.audit.service import Actor
from purse.db import Database
from purse.errors import PurseError
from purse.identity.context import Identity
from purse.merchants import members, service
from purse.merchants.models import MerchantMember
from purse.merchants.rules import MemberRole
from wallet_support import make_user

ACTOR = Actor(kind="system", id="tests")


def test_two_owners_stepping_down_at_once_leave_the_merchant_one(database: Database) -> None:
    identity = Identity(database.settings)
    first = make_user(database, identity, handle="owner_one", display_name="One").user_id
    second = make_user(database, identity, handle="owner_two", display_name="Two").user_id
    assert first is not None and second is not None
    shop = database.run(
        lambda s: service.open_merchant(s, user_id=first, name_en="Shop", name_zh="店", actor=ACTOR)
    ).merchant.id
    database.run(
        lambda s: members.add_member(
            s, merchant_id=shop, handle="owner_two", role=MemberRole.owner, actor=ACTOR
        )
    )
    for _ in range(5):

        def step_down(index: int) -> object:
            user_id = (first, second)[index]
            return database.run(
                lambda s: members.change_role(
                    s, merchant_id=shop, user_id=user_id, role=MemberRole.viewer, actor=ACTOR
                )
            )

        outcomes = race(2, step_down)
        assert sum(1 for outcome in outcomes if isinstance(outcome, PurseError)) == 1, outcomes

        def owners(session: Session) -> int:
            return int(
                session.execute(
                    select(func.count()).where(
                        MerchantMember.merchant_id == shop, MerchantMember.role == "owner"
                    )
                ).scalar_one()
            )

        assert database.run(owners, write=False) == 1

        def both_owners(session: Session) -> None:  # again, for the next round
            for user_id in (first, second):
                members.change_role(
                    session, merchant_id=shop, user_id=user_id, role=MemberRole.owner, actor=ACTOR
                )

        database.run(both_owners)
