"""What the merchants' JSON routes share: who is calling, and what they may do.

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

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from purse.deps import (
    DatabaseDep,
    IdentityDep,
    step_up_for,
)
from purse.identity.principal import Principal
from purse.identity.sessions import Authenticated
from purse.merchants import errors, queries, service
from purse.merchants import schemas as s
from purse.merchants.rules import KeyMode, KeyScope
from purse.models import utc_now
from purse.operations.context import Operations
from purse.operations.schemas import Money
from purse.web.openapi import MERCHANT_KEY_AUTH

T = TypeVar("T")

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
KEYS_STEP_UP = Depends(step_up_for("manage_api_keys"))


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


def balance_reads(
    balances: list[queries.SettlementBalance], mode: str, operations: Operations
) -> list[s.SettlementBalanceRead]:
    assets = operations.assets
    return [
        s.SettlementBalanceRead(
            mode=KeyMode(mode),
            available=Money.of(found.available_minor, found.asset, assets),
            held_for_you=Money.of(found.held_for_you_minor, found.asset, assets),
        )
        for found in balances
    ]
