"""JSON routes of merchants: their staff's (signed in as people) and their servers' (API keys).

Two kinds of caller, kept apart:

* A merchant's **staff** sign in as people (``Authorization: Bearer`` with an access
  token) and reach ``/v1/merchants/...``: only the merchants they work for, and only
  what their role there allows (:func:`purse.merchants.queries.merchant_for_member`).
* A merchant's **server** sends a secret key (``Authorization: Bearer sk_...``) and
  reaches ``/v1/merchant/...``. A key is never a person's token: a user endpoint
  answers it ``session_invalid``, and a merchant endpoint answers a person's token
  ``api_key_invalid``. Its principal has no wallet, so it can never move a user's money
  except through the payment the user approved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from purse.deps import (
    ActorDep,
    CurrentDep,
    DatabaseDep,
    IdempotencyKeyDep,
    IdentityDep,
    IdPath,
    OperationsDep,
    step_up_for,
    user_actor,
)
from purse.identity.principal import Principal
from purse.identity.sessions import Authenticated
from purse.merchants import errors, members, payments, queries, service
from purse.merchants import schemas as s
from purse.merchants.members import MemberRecord
from purse.merchants.payments import PaymentRecord
from purse.merchants.queries import ApiKeyRecord, Membership
from purse.merchants.rules import CaptureMethod, KeyMode, KeyScope, MemberRole, PaymentStatus
from purse.models import utc_now
from purse.money.amounts import parse_amount
from purse.operations.context import Operations
from purse.operations.schemas import Money
from purse.web.openapi import MERCHANT_KEY_AUTH

T = TypeVar("T")

staff = APIRouter(prefix="/v1/merchants", tags=["merchants"])
server = APIRouter(prefix="/v1/merchant", tags=["merchant API"])

_key_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=MERCHANT_KEY_AUTH,
    description="A merchant's secret API key, sk_test_... or sk_live_... (a merchant's server)",
)


async def merchant_key_principal(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_key_bearer)],
) -> Principal:
    """The merchant's server, from ``Authorization: Bearer sk_...``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise errors.ApiKeyInvalid()
    now = utc_now()
    secret = credentials.credentials
    key = await database.read_async(
        lambda session: service.find_api_key(
            session, cipher=identity.cipher, secret=secret, now=now
        )
    )
    if service.touch_due(key, now):
        await database.run_async(
            lambda session: service.touch_api_key(session, key_id=key.id, now=now)
        )
    return Principal.merchant_key(
        key_id=key.id,
        merchant_id=key.merchant_id,
        mode=key.mode,
        scopes=frozenset(key.scopes),
        address=request.client.host if request.client else None,
    )


KeyPrincipalDep = Annotated[Principal, Depends(merchant_key_principal)]
_KEYS_STEP_UP = Depends(step_up_for("manage_api_keys"))


def as_member(
    current: Authenticated, merchant_id: int, permission: str, then: Callable[[Session], T]
) -> Callable[[Session], T]:
    """A use case that checks that the caller works for the merchant with a role that
    allows ``permission``, then runs ``then``, both in one transaction."""

    def use_case(session: Session) -> T:
        queries.merchant_for_member(
            session, user_id=current.user_id, merchant_id=merchant_id, permission=permission
        )
        return then(session)

    return use_case


def require_read(principal: Principal) -> None:
    """Reading payments: a key that may make them may read them too."""
    if not principal.scopes & {KeyScope.read.value, KeyScope.payments.value}:
        raise errors.ApiKeyScopeMissing(scope=KeyScope.read.value)


def require_scope(principal: Principal, scope: KeyScope) -> None:
    if scope.value not in principal.scopes:
        raise errors.ApiKeyScopeMissing(scope=scope.value)


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


@staff.post("", status_code=status.HTTP_201_CREATED, response_model=s.MerchantRead)
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


@staff.get("", response_model=list[s.MerchantRead])
def list_merchants(database: DatabaseDep, current: CurrentDep) -> list[s.MerchantRead]:
    """The merchants the caller works for, with their role at each."""
    found = database.run(
        lambda session: queries.memberships(session, user_id=current.user_id), write=False
    )
    return [_merchant_read(membership) for membership in found]


@staff.get("/{merchant_id}", response_model=s.MerchantRead)
def get_merchant(merchant_id: IdPath, database: DatabaseDep, current: CurrentDep) -> s.MerchantRead:
    """One merchant the caller works for."""
    membership = database.run(
        lambda session: queries.merchant_for_member(
            session, user_id=current.user_id, merchant_id=merchant_id, permission="merchant:read"
        ),
        write=False,
    )
    return _merchant_read(membership)


@staff.get("/{merchant_id}/api-keys", response_model=list[s.ApiKeyRead])
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


@staff.post(
    "/{merchant_id}/api-keys", status_code=status.HTTP_201_CREATED, response_model=s.ApiKeyCreated
)
def create_api_key(
    merchant_id: IdPath,
    body: s.ApiKeyCreate,
    database: DatabaseDep,
    identity: IdentityDep,
    current: CurrentDep,
    actor: ActorDep,
    _fresh: Annotated[Authenticated, _KEYS_STEP_UP],
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


@staff.post("/{merchant_id}/api-keys/{key_id}/revoke", response_model=s.ApiKeyRead)
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


@staff.post(
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
    _fresh: Annotated[Authenticated, _KEYS_STEP_UP],
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


@staff.get("/{merchant_id}/members", response_model=list[s.MemberRead])
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


@staff.post(
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


@staff.put("/{merchant_id}/members/{user_id}", response_model=s.MemberRead)
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


@staff.delete("/{merchant_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
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


# The merchant's server's routes ---------------------------------------------------------


@server.get("", response_model=s.KeyMerchantRead)
def key_merchant(principal: KeyPrincipalDep, database: DatabaseDep) -> s.KeyMerchantRead:
    """The merchant this key belongs to, and the key's mode and scopes (any scope)."""
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id = principal.merchant_id
    merchant = database.run(
        lambda session: queries.merchant(session, merchant_id=merchant_id), write=False
    )
    return s.KeyMerchantRead(
        merchant_id=merchant.id,
        name_en=merchant.name_en,
        name_zh=merchant.name_zh,
        mode=KeyMode(principal.mode),
        scopes=[scope for scope in KeyScope if scope.value in principal.scopes],
    )


def _payment_read(payment: PaymentRecord, operations: Operations) -> s.PaymentRead:
    return s.PaymentRead(
        reference=payment.reference,
        mode=KeyMode(payment.mode),
        status=PaymentStatus(payment.status),
        amount=Money.of(payment.amount_minor, payment.asset, operations.assets),
        description=payment.description,
        order_reference=payment.order_reference,
        metadata=payment.metadata,
        capture_method=CaptureMethod(payment.capture_method),
        approve_by=payment.approve_by,
        created_at=payment.created_at,
    )


@server.post("/payments", status_code=status.HTTP_201_CREATED, response_model=s.PaymentRead)
def create_payment(
    body: s.PaymentCreate,
    response: Response,
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
    key: IdempotencyKeyDep,
) -> s.PaymentRead:
    """Ask for a payment; the customer approves it at checkout (scope ``payments``).

    The same Idempotency-Key with the same request answers with the first payment
    (``Idempotent-Replayed: true``); with another request, ``idempotency_key_reused``.
    """
    require_scope(principal, KeyScope.payments)
    assert principal.merchant_id and principal.mode and principal.key_id
    merchant_id, mode, key_id = principal.merchant_id, principal.mode, principal.key_id
    asset = operations.offered(body.amount.currency)
    request = payments.PaymentRequest(
        asset=asset.code,
        amount_minor=parse_amount(body.amount.value, asset),
        description=body.description,
        order_reference=body.order_reference,
        metadata=body.metadata,
        capture_method=body.capture_method,
        approve_within_seconds=body.approve_within_seconds,
    )
    payment, replayed = database.run(
        lambda session: payments.create_payment(
            session,
            merchant_id=merchant_id,
            mode=mode,
            key_id=key_id,
            idempotency_key=key,
            request=request,
        )
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _payment_read(payment, operations)


@server.get("/payments", response_model=s.PaymentList)
def list_payments(
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
    status: PaymentStatus | None = None,
    order_reference: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> s.PaymentList:
    """The merchant's payments in the key's mode, newest first (scope ``read`` or
    ``payments``); filter by status or by your order reference."""
    require_read(principal)
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id, mode = principal.merchant_id, principal.mode
    page = database.run(
        lambda session: payments.payments_for_key(
            session,
            merchant_id=merchant_id,
            mode=mode,
            status=status,
            order_reference=order_reference,
            cursor=cursor,
            limit=limit,
        ),
        write=False,
    )
    return s.PaymentList(
        items=[_payment_read(payment, operations) for payment in page.items],
        next_cursor=page.next_cursor,
    )


@server.get("/payments/{reference}", response_model=s.PaymentRead)
def get_payment(
    reference: Annotated[str, Path(max_length=32)],
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
) -> s.PaymentRead:
    """One of the merchant's payments, in the key's mode (scope ``read`` or ``payments``)."""
    require_read(principal)
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id, mode = principal.merchant_id, principal.mode
    payment = database.run(
        lambda session: payments.payment_for_key(
            session, merchant_id=merchant_id, mode=mode, reference=reference
        ),
        write=False,
    )
    return _payment_read(payment, operations)
