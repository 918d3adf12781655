"""What the identity pages share: form fields, the actor of a web form, code pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import Response

from purse.audit.service import Actor
from purse.deps import DatabaseDep
from purse.i18n import translate
from purse.identity import sessions
from purse.identity.codes import code_minutes
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.web.templating import page_locale
from purse.web.views import page

Field = Annotated[str, Form()]
OptionalField = Annotated[str, Form()]


def code_page(
    request: Request,
    database: DatabaseDep,
    template: str,
    status_code: int = 200,
    **context: object,
) -> Response:
    """A page that asks for a one-time code, saying how long codes work."""
    minutes = code_minutes(database.settings)
    return page(request, database, template, status_code, code_minutes=minutes, **context)


def notice(request: Request, message: str) -> str:
    """A notice shown above a page, in the reader's language."""
    return translate(message, page_locale(request))


def needs_step_up(database: DatabaseDep, current: sessions.Authenticated, action: str) -> bool:
    """Whether ``action`` asks for the password again on this sign-in."""
    return Principal.of_session(current).needs_step_up(
        action, settings=database.settings, now=utc_now()
    )


def web_actor(actor: Actor, current: sessions.Authenticated) -> Actor:
    """The audit actor of a signed-in form: the user, from the request's address."""
    return Actor(
        kind="user", id=str(current.user_id), address=actor.address, request_id=actor.request_id
    )
