"""FastAPI dependencies shared by every domain's routes: the DB, the caller, who is signed in.

A dependency that does no I/O is ``async def``: FastAPI runs it on the event loop
instead of handing it to a worker thread and back, which costs more than its work.
:func:`get_current` is ``async`` too: its read runs on the loop on SQLite and on a
worker thread on PostgreSQL (:meth:`purse.db.Database.read_one_async`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from purse.audit.service import Actor, record
from purse.db import Database
from purse.identity.context import Identity
from purse.identity.errors import PermissionDenied, SessionInvalid
from purse.identity.permissions import allows
from purse.identity.principal import Principal
from purse.identity.sessions import Authenticated, authenticate_request_async
from purse.models import utc_now
from purse.operations.context import Operations
from purse.operations.errors import IdempotencyKeyMissing
from purse.operations.service import check_key
from purse.web.openapi import BEARER_AUTH

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_AUTH,
    description="An access token from POST /v1/auth/token (`signIn`); renew it with `refreshToken`",
)


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


async def get_actor(request: Request) -> Actor:
    """Who is calling, as the audit log records it (before we know the user)."""
    return actor_of(request)


def actor_of(request: Request) -> Actor:
    """:func:`get_actor` for code that is not a dependency."""
    return Actor(
        kind="anonymous",
        address=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )


async def get_current(
    request: Request,
    database: Annotated[Database, Depends(get_database)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Authenticated:
    """The signed-in API caller, from ``Authorization: Bearer <access token>``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise SessionInvalid()
    current = await authenticate_request_async(database, token=credentials.credentials, kind="api")
    request.state.user_id = current.user_id
    return current


def step_up_for(action: str) -> Callable[..., Awaitable[Authenticated]]:
    """A dependency for a sensitive ``action``: if settings list it, the caller must have
    confirmed their password within ``step_up_max_age_seconds`` (403 step_up_required)."""

    async def check(
        current: Annotated[Authenticated, Depends(get_current)],
        database: Annotated[Database, Depends(get_database)],
    ) -> Authenticated:
        Principal.of_session(current).require_step_up(
            action, settings=database.settings, now=utc_now()
        )
        return current

    return check


def require(permission: str) -> Callable[..., Awaitable[Authenticated]]:
    """A dependency that lets the caller through only with ``permission`` (and audits refusals)."""

    async def check(
        current: Annotated[Authenticated, Depends(get_current)],
        database: Annotated[Database, Depends(get_database)],
        actor: Annotated[Actor, Depends(get_actor)],
    ) -> Authenticated:
        if not allows(current.role, permission):
            await run_in_threadpool(
                database.run,
                lambda session: record(
                    session,
                    kind="permission_denied",
                    actor=user_actor(actor, current),
                    subject_user_id=current.user_id,
                    data={"permission": permission, "role": current.role},
                ),
            )
            raise PermissionDenied()
        return current

    return check


_WALLET_OWNER = require("wallet:own")


async def wallet_principal(
    request: Request, current: Annotated[Authenticated, Depends(_WALLET_OWNER)]
) -> Principal:
    """The caller as a :class:`Principal`, acting on their own wallet."""
    return Principal.of_session(current, address=request.client.host if request.client else None)


IDEMPOTENCY_HEADER = "Idempotency-Key"


async def get_operations(request: Request) -> Operations:
    operations: Operations = request.app.state.purse.operations
    return operations


async def idempotency_key(
    operations: Annotated[Operations, Depends(get_operations)],
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="A unique key per request (a UUID); send the same key to retry",
        ),
    ] = None,
) -> str:
    """The ``Idempotency-Key`` of a POST that moves money or makes something: required,
    printable ASCII within the configured length."""
    if not key:
        raise IdempotencyKeyMissing()
    return check_key(operations, key)


# Every id in a path: a positive 64-bit integer, anything else a 422 before the route runs.
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]

DatabaseDep = Annotated[Database, Depends(get_database)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
ActorDep = Annotated[Actor, Depends(get_actor)]
CurrentDep = Annotated[Authenticated, Depends(get_current)]
WalletPrincipalDep = Annotated[Principal, Depends(wallet_principal)]
OperationsDep = Annotated[Operations, Depends(get_operations)]
IdempotencyKeyDep = Annotated[str, Depends(idempotency_key)]


def user_actor(actor: Actor, current: Authenticated) -> Actor:
    return Actor(
        kind="user", id=str(current.user_id), address=actor.address, request_id=actor.request_id
    )
