"""The merchant dashboard's developer pages: webhook endpoints and their deliveries (with
resend), API keys (made with step-up, the secret shown once; revoked; rolled), and the team.

Reading is for the whole team; changing keys and webhooks is for owners and developers.
Every change is audited by the same use cases the API runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from purse.audit.service import Actor
from purse.db import Database
from purse.deps import DatabaseDep, IdentityDep, IdPath, actor_of, user_actor
from purse.errors import PurseError
from purse.identity.context import Identity
from purse.identity.principal import Principal
from purse.identity.sessions import Authenticated
from purse.merchants import members, queries, service, webhooks
from purse.merchants.pages.dashboard import member_of, staff_page
from purse.merchants.rules import KeyMode, KeyScope
from purse.models import utc_now
from purse.wallet.pages.common import with_step_up
from purse.web.forms import form_action
from purse.web.security import check_csrf
from purse.web.views import redirect, require_signed_in

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]


def _actor(request: Request, current: Authenticated) -> Actor:
    return user_actor(actor_of(request), current)


@router.get("/merchant/{merchant_id}/webhooks", response_class=HTMLResponse)
def webhooks_page(merchant_id: IdPath, request: Request, database: DatabaseDep) -> Response:
    """The endpoints, and each one's latest deliveries with their attempts."""
    return _webhooks_page(merchant_id, request, database)


def _webhooks_page(
    merchant_id: int, request: Request, database: Database, error: PurseError | None = None
) -> Response:
    current = require_signed_in(request, database)
    membership = member_of(database, current, merchant_id, "merchant:read")

    def read(session: Session) -> tuple[Any, Any]:
        found = webhooks.endpoints(session, merchant_id=merchant_id)
        latest = webhooks.deliveries(session, merchant_id=merchant_id, limit=20)
        return found, latest

    endpoints, deliveries = database.run(read, write=False)
    return staff_page(
        request,
        database,
        "merchant_webhooks.html",
        membership,
        tab="webhooks",
        endpoints=endpoints,
        deliveries=deliveries,
        error=error,
    )


@router.post("/merchant/{merchant_id}/webhooks/deliveries/{delivery_id}/resend")
def resend(
    merchant_id: IdPath,
    delivery_id: IdPath,
    request: Request,
    database: DatabaseDep,
    csrf_token: Field = "",
) -> Response:
    check_csrf(request, csrf_token)
    current = require_signed_in(request, database)
    member_of(database, current, merchant_id, "webhooks:manage")
    actor = _actor(request, current)
    return form_action(
        lambda: database.run(
            lambda session: webhooks.resend(
                session,
                merchant_id=merchant_id,
                delivery_id=delivery_id,
                actor=actor,
                now=utc_now(),
            )
        ),
        then=lambda _found: redirect(f"/merchant/{merchant_id}/webhooks?resent={delivery_id}"),
        again=lambda error: _webhooks_page(merchant_id, request, database, error=error),
    )


@router.get("/merchant/{merchant_id}/keys", response_class=HTMLResponse)
def keys_page(merchant_id: IdPath, request: Request, database: DatabaseDep) -> Response:
    """The merchant's API keys: never a secret, except the one just made, once."""
    return _keys_page(merchant_id, request, database)


def _keys_page(
    merchant_id: int,
    request: Request,
    database: Database,
    error: PurseError | None = None,
    secret: str | None = None,
) -> Response:
    current = require_signed_in(request, database)
    membership = member_of(database, current, merchant_id, "keys:manage")
    keys = database.run(
        lambda session: queries.api_keys(session, merchant_id=merchant_id), write=False
    )
    response = staff_page(
        request,
        database,
        "merchant_keys.html",
        membership,
        tab="keys",
        keys=keys,
        now=utc_now(),
        scopes=[scope.value for scope in KeyScope],
        error=error,
        secret=secret,
    )
    if error is not None:
        response.status_code = error.status
    response.headers["Cache-Control"] = "no-store"
    return response


def _new_secret(
    request: Request,
    database: Database,
    identity: Identity,
    *,
    merchant_id: int,
    action: str,
    fields: dict[str, str],
    csrf_token: str,
    password: str,
    second_factor: str,
    make: Callable[[Session, Authenticated], tuple[Any, str]],
) -> Response:
    """A form that makes a secret key (a new one, or a roll): the role, a fresh password
    (asked for, then the same form runs again), and the secret shown on the page once."""

    def run(principal: Principal) -> str:
        current = require_signed_in(request, database)
        member_of(database, current, merchant_id, "keys:manage")
        principal.require_step_up("manage_api_keys", settings=database.settings, now=utc_now())
        _key, secret = database.run(lambda session: make(session, current))
        return secret

    return with_step_up(
        request,
        database,
        identity,
        csrf_token=csrf_token,
        password=password,
        second_factor=second_factor,
        action=action,
        fields=fields,
        nav="merchant",
        run=run,
        then=lambda secret: _keys_page(merchant_id, request, database, secret=secret),
        again=lambda error: _keys_page(merchant_id, request, database, error=error),
    )


@router.post("/merchant/{merchant_id}/keys", response_class=HTMLResponse)
def create_key(
    merchant_id: IdPath,
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    csrf_token: Field = "",
    name: Annotated[str, Form(max_length=256)] = "",
    mode: Annotated[str, Form(max_length=8)] = "test",
    scopes: Annotated[list[str] | None, Form()] = None,
    scope_list: Annotated[str, Form(max_length=64)] = "",
    password: Field = "",
    second_factor: Field = "",
) -> Response:
    """Make a key (after a fresh password); its secret is on the next page only.

    The scopes come as checkboxes, or (the same form again after the password) as
    ``scope_list``, space-separated.
    """
    chosen = scopes if scopes is not None else scope_list.split()
    return _new_secret(
        request,
        database,
        identity,
        merchant_id=merchant_id,
        action=f"/merchant/{merchant_id}/keys",
        fields={"name": name, "mode": mode, "scope_list": " ".join(chosen)},
        csrf_token=csrf_token,
        password=password,
        second_factor=second_factor,
        make=lambda session, current: service.create_api_key(
            session,
            cipher=identity.cipher,
            merchant_id=merchant_id,
            user_id=current.user_id,
            mode=KeyMode.live if mode == "live" else KeyMode.test,
            name=name,
            scopes=chosen,
            actor=_actor(request, current),
        ),
    )


@router.post("/merchant/{merchant_id}/keys/{key_id}/roll", response_class=HTMLResponse)
def roll_key(
    merchant_id: IdPath,
    key_id: IdPath,
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    csrf_token: Field = "",
    overlap_hours: Annotated[int, Form(ge=0, le=168)] = 24,
    password: Field = "",
    second_factor: Field = "",
) -> Response:
    """Replace a key (after a fresh password); the old one works on for the overlap."""
    return _new_secret(
        request,
        database,
        identity,
        merchant_id=merchant_id,
        action=f"/merchant/{merchant_id}/keys/{key_id}/roll",
        fields={"overlap_hours": str(overlap_hours)},
        csrf_token=csrf_token,
        password=password,
        second_factor=second_factor,
        make=lambda session, current: service.roll_api_key(
            session,
            cipher=identity.cipher,
            merchant_id=merchant_id,
            key_id=key_id,
            user_id=current.user_id,
            overlap_seconds=overlap_hours * 3600,
            actor=_actor(request, current),
        ),
    )


@router.post("/merchant/{merchant_id}/keys/{key_id}/revoke")
def revoke_key(
    merchant_id: IdPath,
    key_id: IdPath,
    request: Request,
    database: DatabaseDep,
    csrf_token: Field = "",
) -> Response:
    check_csrf(request, csrf_token)
    current = require_signed_in(request, database)
    member_of(database, current, merchant_id, "keys:manage")
    actor = _actor(request, current)
    return form_action(
        lambda: database.run(
            lambda session: service.revoke_api_key(
                session, merchant_id=merchant_id, key_id=key_id, actor=actor
            )
        ),
        then=lambda _key: redirect(f"/merchant/{merchant_id}/keys"),
        again=lambda error: _keys_page(merchant_id, request, database, error=error),
    )


@router.get("/merchant/{merchant_id}/team", response_class=HTMLResponse)
def team_page(merchant_id: IdPath, request: Request, database: DatabaseDep) -> Response:
    """Who works for the merchant, and as what."""
    current = require_signed_in(request, database)
    membership = member_of(database, current, merchant_id, "merchant:read")
    team = database.run(
        lambda session: members.members(session, merchant_id=merchant_id), write=False
    )
    return staff_page(request, database, "merchant_team.html", membership, tab="team", team=team)
