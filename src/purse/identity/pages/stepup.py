"""Step-up: the password (and 2FA) asked again before a sensitive action.

Other domains' pages use :func:`step_up_page` and :func:`confirm_step_up` for actions of
their own (a large transfer, removing a card).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from purse.deps import ActorDep, DatabaseDep, IdentityDep, actor_of
from purse.errors import PurseError
from purse.identity import sessions
from purse.identity import signin as identity_signin
from purse.identity import users as identity_users
from purse.identity.errors import SecondFactorRequired
from purse.identity.pages.common import (
    Field,
    OptionalField,
    web_actor,
)
from purse.web.views import (
    local_path,
    page,
    redirect,
    signed_in_form,
)

router = APIRouter(include_in_schema=False)


def step_up_page(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    current: sessions.Authenticated,
    error: PurseError | None = None,
    next: str = "/security#two-factor",
    *,
    action: str = "/security/step-up",
    fields: dict[str, str] | None = None,
    nav: str = "security",
    summary: str | None = None,
) -> Response:
    """Ask for the password (and 2FA) again before a sensitive action.

    By default the answer goes to ``/security/step-up``, then on to ``next``. A form
    that was refused with ``step_up_required`` (a large transfer) passes its own
    ``action`` and ``fields`` instead: the same form is posted again, with the
    password, and runs once it is confirmed (:func:`confirm_step_up`).
    """
    me = database.run(
        lambda session: identity_users.profile(session, identity=identity, user_id=current.user_id),
        write=False,
    )
    return page(
        request,
        database,
        "step_up.html",
        nav=nav,
        status_code=error.status if error else 200,
        error=error,
        two_factor=me.two_factor,
        next=next,
        action=action,
        fields=fields or {},
        summary=summary,
    )


def confirm_step_up(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    current: sessions.Authenticated,
    *,
    password: str,
    second_factor: str,
) -> PurseError | None:
    """Check a password (and 2FA) posted with a form; None when it is confirmed.

    The attempt is counted in a transaction of its own, so a wrong password counts
    toward the lockout even though the form then shows the page again.
    """
    actor = web_actor(actor_of(request), current)
    outcome = database.run(
        lambda session: identity_signin.step_up(
            session,
            identity=identity,
            user_id=current.user_id,
            session_id=current.session_id,
            password=password,
            second_factor=second_factor or None,
            actor=actor,
        )
    )
    return outcome.error


@router.post("/security/step-up", response_class=HTMLResponse)
def step_up(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    password: Field = "",
    second_factor: OptionalField = "",
    next: OptionalField = "",
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    target = local_path(next, "/security#two-factor")
    outcome = database.run(
        lambda session: identity_signin.step_up(
            session,
            identity=identity,
            user_id=current.user_id,
            session_id=current.session_id,
            password=password,
            second_factor=second_factor or None,
            actor=web_actor(actor, current),
        )
    )
    if outcome.error is not None:
        shown = None if isinstance(outcome.error, SecondFactorRequired) else outcome.error
        return step_up_page(request, database, identity, current, shown, next=target)
    return redirect(target)
