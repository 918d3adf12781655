"""The routes of a merchant's staff, signed in as people: the merchant, its keys, its team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from purse.deps import (
    ActorDep,
    CurrentDep,
    DatabaseDep,
    IdentityDep,
    IdPath,
    OperationsDep,
    user_actor,
)
from purse.identity.sessions import Authenticated
from purse.merchants import members, queries, service
from purse.merchants import schemas as s
from purse.merchants.api.common import KEYS_STEP_UP, as_member, balance_reads
from purse.merchants.members import MemberRecord
from purse.merchants.queries import ApiKeyRecord, Membership
from purse.merchants.rules import KeyMode, KeyScope, MemberRole
from purse.models import utc_now

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


def _merchant_read(membership: Membership) -> s.MerchantRead:
    merchant = membership.merchant
    return s.MerchantRead(
        id=merchant.id,
        name_en=merchant.name_en,
        name_zh=merchant.name_zh,
        logo_initial=merchant.logo_initial,
        status=merchant.status,
        created_at=merchant.created_at,
        role=MemberRole(membership.role),
        capture_requires_fulfilment=merchant.capture_requires_fulfilment,
    )


def _key_read(key: ApiKeyRecord) -> s.ApiKeyRead:
    return s.ApiKeyRead(
        id=key.id,
        name=key.name,
        mode=KeyMode(key.mode),
        scopes=[KeyScope(scope) for scope in key.scopes],
        last4=key.last4,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        ends_at=key.ends_at,
        rolled_to_id=key.rolled_to_id,
        works=key.works_at(utc_now()),
    )


def _key_created(key: ApiKeyRecord, secret: str) -> s.ApiKeyCreated:
    return s.ApiKeyCreated(**_key_read(key).model_dump(), secret=secret)


# The staff's routes ---------------------------------------------------------------------


@router.post("", status_code=status.HTTP_201_CREATED, response_model=s.MerchantRead)
def open_merchant(
    body: s.MerchantCreate, database: DatabaseDep, current: CurrentDep, actor: ActorDep
) -> s.MerchantRead:
    """Open a merchant; the caller becomes its owner."""
    membership = database.run(
        lambda session: service.open_merchant(
            session,
            user_id=current.user_id,
            name_en=body.name_en,
            name_zh=body.name_zh,
            actor=user_actor(actor, current),
        )
    )
    return _merchant_read(membership)


@router.get("", response_model=list[s.MerchantRead])
def list_merchants(database: DatabaseDep, current: CurrentDep) -> list[s.MerchantRead]:
    """The merchants the caller works for, with their role at each."""
    found = database.run(
        lambda session: queries.memberships(session, user_id=current.user_id), write=False
    )
    return [_merchant_read(membership) for membership in found]


@router.get("/{merchant_id}", response_model=s.MerchantRead)
def get_merchant(merchant_id: IdPath, database: DatabaseDep, current: CurrentDep) -> s.MerchantRead:
    """One merchant the caller works for."""
    membership = database.run(
        lambda session: queries.merchant_for_member(
            session, user_id=current.user_id, merchant_id=merchant_id, permission="merchant:read"
        ),
        write=False,
    )
    return _merchant_read(membership)


@router.patch("/{merchant_id}", response_model=s.MerchantRead)
def change_merchant(
    merchant_id: IdPath,
    body: s.MerchantUpdate,
    database: DatabaseDep,
    current: CurrentDep,
    actor: ActorDep,
) -> s.MerchantRead:
    """Change the merchant's settings (owners only): "no charge without fulfilment"."""
    use_case = as_member(
        current,
        merchant_id,
        "merchant:manage",
        lambda session: service.change_settings(
            session,
            merchant_id=merchant_id,
            user_id=current.user_id,
            capture_requires_fulfilment=body.capture_requires_fulfilment,
            actor=user_actor(actor, current),
        ),
    )
    return _merchant_read(database.run(use_case))


@router.get("/{merchant_id}/api-keys", response_model=list[s.ApiKeyRead])
def list_api_keys(
    merchant_id: IdPath, database: DatabaseDep, current: CurrentDep
) -> list[s.ApiKeyRead]:
    """The merchant's API keys, newest first, ended ones included. Never their secrets."""
    use_case = as_member(
        current,
        merchant_id,
        "keys:manage",
        lambda session: queries.api_keys(session, merchant_id=merchant_id),
    )
    return [_key_read(key) for key in database.run(use_case, write=False)]


@router.post(
    "/{merchant_id}/api-keys", status_code=status.HTTP_201_CREATED, response_model=s.ApiKeyCreated
)
def create_api_key(
    merchant_id: IdPath,
    body: s.ApiKeyCreate,
    database: DatabaseDep,
    identity: IdentityDep,
    current: CurrentDep,
    actor: ActorDep,
    _fresh: Annotated[Authenticated, KEYS_STEP_UP],
) -> s.ApiKeyCreated:
    """Make an API key. Its secret is in this answer only: store it now."""
    use_case = as_member(
        current,
        merchant_id,
        "keys:manage",
        lambda session: service.create_api_key(
            session,
            cipher=identity.cipher,
            merchant_id=merchant_id,
            user_id=current.user_id,
            mode=body.mode,
            name=body.name,
            scopes=[scope.value for scope in body.scopes],
            actor=user_actor(actor, current),
        ),
    )
    return _key_created(*database.run(use_case))


@router.post("/{merchant_id}/api-keys/{key_id}/revoke", response_model=s.ApiKeyRead)
def revoke_api_key(
    merchant_id: IdPath, key_id: IdPath, database: DatabaseDep, current: CurrentDep, actor: ActorDep
) -> s.ApiKeyRead:
    """End a key now: the next request with it is refused."""
    use_case = as_member(
        current,
        merchant_id,
        "keys:manage",
        lambda session: service.revoke_api_key(
            session,
            merchant_id=merchant_id,
            key_id=key_id,
            actor=user_actor(actor, current),
        ),
    )
    return _key_read(database.run(use_case))


@router.post(
    "/{merchant_id}/api-keys/{key_id}/roll",
    status_code=status.HTTP_201_CREATED,
    response_model=s.ApiKeyCreated,
)
def roll_api_key(
    merchant_id: IdPath,
    key_id: IdPath,
    body: s.ApiKeyRoll,
    database: DatabaseDep,
    identity: IdentityDep,
    current: CurrentDep,
    actor: ActorDep,
    _fresh: Annotated[Authenticated, KEYS_STEP_UP],
) -> s.ApiKeyCreated:
    """Replace a key with a new one; the old one works on for ``overlap_seconds``."""
    use_case = as_member(
        current,
        merchant_id,
        "keys:manage",
        lambda session: service.roll_api_key(
            session,
            cipher=identity.cipher,
            merchant_id=merchant_id,
            key_id=key_id,
            user_id=current.user_id,
            overlap_seconds=body.overlap_seconds,
            actor=user_actor(actor, current),
        ),
    )
    return _key_created(*database.run(use_case))


def _member_read(member: MemberRecord) -> s.MemberRead:
    return s.MemberRead(
        user_id=member.user_id,
        handle=member.handle,
        display_name=member.display_name,
        role=MemberRole(member.role),
        created_at=member.created_at,
    )


@router.get("/{merchant_id}/members", response_model=list[s.MemberRead])
def list_members(
    merchant_id: IdPath, database: DatabaseDep, current: CurrentDep
) -> list[s.MemberRead]:
    """The merchant's team: every member sees who else is on it, and as what."""
    use_case = as_member(
        current,
        merchant_id,
        "merchant:read",
        lambda session: members.members(session, merchant_id=merchant_id),
    )
    return [_member_read(member) for member in database.run(use_case, write=False)]


@router.post(
    "/{merchant_id}/members", status_code=status.HTTP_201_CREATED, response_model=s.MemberRead
)
def add_member(
    merchant_id: IdPath,
    body: s.MemberCreate,
    database: DatabaseDep,
    current: CurrentDep,
    actor: ActorDep,
) -> s.MemberRead:
    """Add a person to the team by their handle (owners only)."""
    use_case = as_member(
        current,
        merchant_id,
        "members:manage",
        lambda session: members.add_member(
            session,
            merchant_id=merchant_id,
            handle=body.handle,
            role=body.role,
            actor=user_actor(actor, current),
        ),
    )
    return _member_read(database.run(use_case))


@router.put("/{merchant_id}/members/{user_id}", response_model=s.MemberRead)
def change_member_role(
    merchant_id: IdPath,
    user_id: IdPath,
    body: s.MemberUpdate,
    database: DatabaseDep,
    current: CurrentDep,
    actor: ActorDep,
) -> s.MemberRead:
    """Give a member another role (owners only; the last owner stays an owner)."""
    use_case = as_member(
        current,
        merchant_id,
        "members:manage",
        lambda session: members.change_role(
            session,
            merchant_id=merchant_id,
            user_id=user_id,
            role=body.role,
            actor=user_actor(actor, current),
        ),
    )
    return _member_read(database.run(use_case))


@router.delete("/{merchant_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    merchant_id: IdPath,
    user_id: IdPath,
    database: DatabaseDep,
    current: CurrentDep,
    actor: ActorDep,
) -> Response:
    """Take someone off the team (owners only; the last owner stays)."""
    use_case = as_member(
        current,
        merchant_id,
        "members:manage",
        lambda session: members.remove_member(
            session, merchant_id=merchant_id, user_id=user_id, actor=user_actor(actor, current)
        ),
    )
    database.run(use_case)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{merchant_id}/balance", response_model=list[s.SettlementBalanceRead])
def get_merchant_balance(
    merchant_id: IdPath,
    database: DatabaseDep,
    current: CurrentDep,
    operations: OperationsDep,
    mode: KeyMode = KeyMode.live,
) -> list[s.SettlementBalanceRead]:
    """The merchant's settlement balance in ``mode``, per currency (the whole team)."""
    use_case = as_member(
        current,
        merchant_id,
        "merchant:read",
        lambda session: queries.settlement_balances(
            session, merchant_id=merchant_id, mode=mode.value
        ),
    )
    return balance_reads(database.run(use_case, write=False), mode.value, operations)
