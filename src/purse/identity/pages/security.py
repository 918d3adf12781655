"""The security page: two-factor authentication, signed-in devices, the password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from purse.audit.service import SIGN_IN_KINDS, recent_activity
from purse.deps import ActorDep, DatabaseDep, IdentityDep, IdPath
from purse.errors import PurseError
from purse.identity import credentials as identity_credentials
from purse.identity import sessions, twofactor
from purse.identity import users as identity_users
from purse.identity.errors import CodeInvalid
from purse.identity.pages.common import (
    Field,
    needs_step_up,
    web_actor,
)
from purse.identity.pages.stepup import step_up_page
from purse.web.views import (
    page,
    redirect,
    require_signed_in,
    signed_in_form,
)

router = APIRouter(include_in_schema=False)


@router.get("/security", response_class=HTMLResponse)
def security(request: Request, database: DatabaseDep, identity: IdentityDep) -> Response:
    current = require_signed_in(request, database)
    me, listed, activity = database.run(
        lambda session: (
            identity_users.profile(session, identity=identity, user_id=current.user_id),
            sessions.list_sessions(
                session, user_id=current.user_id, current_session_id=current.session_id
            ),
            recent_activity(session, user_id=current.user_id),
        ),
        write=False,
    )
    return page(
        request,
        database,
        "security.html",
        nav="security",
        me=me,
        sessions=listed,
        activity=activity,
        activity_labels=SIGN_IN_KINDS,
    )


@router.post("/security/2fa/start", response_class=HTMLResponse)
def two_factor_start(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    if needs_step_up(database, current, "two_factor"):
        return step_up_page(request, database, identity, current)
    try:
        enrolment = database.run(
            lambda session: twofactor.begin_totp(
                session,
                identity=identity,
                user_id=current.user_id,
                actor=web_actor(actor, current),
            )
        )
    except PurseError:
        return redirect("/security#two-factor")
    return page(request, database, "two_factor_setup.html", nav="security", enrolment=enrolment)


@router.post("/security/2fa/confirm", response_class=HTMLResponse)
def two_factor_confirm(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    code: Field = "",
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    try:
        codes = database.run(
            lambda session: twofactor.confirm_totp(
                session,
                identity=identity,
                user_id=current.user_id,
                code=code,
                actor=web_actor(actor, current),
            )
        )
    except PurseError:
        return redirect("/security#two-factor")
    if codes is None:
        enrolment = database.run(
            lambda session: twofactor.begin_totp(
                session,
                identity=identity,
                user_id=current.user_id,
                actor=web_actor(actor, current),
            )
        )
        return page(
            request,
            database,
            "two_factor_setup.html",
            nav="security",
            status_code=422,
            enrolment=enrolment,
            error=CodeInvalid(),
        )
    return page(request, database, "recovery_codes.html", nav="security", codes=codes)


@router.post("/security/2fa/recovery-codes", response_class=HTMLResponse)
def two_factor_recovery_codes(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    if needs_step_up(database, current, "two_factor"):
        return step_up_page(request, database, identity, current)
    codes = database.run(
        lambda session: twofactor.regenerate_recovery_codes(
            session, identity=identity, user_id=current.user_id, actor=web_actor(actor, current)
        )
    )
    return page(request, database, "recovery_codes.html", nav="security", codes=codes)


@router.post("/security/2fa/disable")
def two_factor_disable(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    if needs_step_up(database, current, "two_factor"):
        return step_up_page(request, database, identity, current)
    database.run(
        lambda session: twofactor.disable_totp(
            session, identity=identity, user_id=current.user_id, actor=web_actor(actor, current)
        )
    )
    return redirect("/security#two-factor")


@router.post("/security/sessions/{session_id}/end")
def end_session(
    request: Request,
    session_id: IdPath,
    database: DatabaseDep,
    actor: ActorDep,
    csrf_token: Field = "",
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    database.run(
        lambda session: sessions.end_session(
            session,
            user_id=current.user_id,
            session_id=session_id,
            actor=web_actor(actor, current),
        )
    )
    return redirect("/security")


@router.post("/security/sessions/end-others")
def end_others(
    request: Request, database: DatabaseDep, actor: ActorDep, csrf_token: Field = ""
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    database.run(
        lambda session: sessions.end_all_sessions(
            session,
            user_id=current.user_id,
            actor=web_actor(actor, current),
            reason="ended_by_user",
            except_session_id=current.session_id,
        )
    )
    return redirect("/security")


@router.post("/security/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    new_password: Field = "",
) -> Response:
    current = signed_in_form(request, database, csrf_token)
    if current is None:
        return redirect("/signin")
    if needs_step_up(database, current, "change_password"):
        return step_up_page(request, database, identity, current)
    try:
        database.run(
            lambda session: identity_credentials.change_password(
                session,
                identity=identity,
                user_id=current.user_id,
                keep_session_id=current.session_id,
                new_password=new_password,
                actor=web_actor(actor, current),
            )
        )
    except PurseError as error:
        return page(
            request,
            database,
            "change_password.html",
            nav="security",
            status_code=error.status,
            error=error,
        )
    return redirect("/security?changed=password")


@router.get("/security/password", response_class=HTMLResponse)
def change_password_form(request: Request, database: DatabaseDep) -> Response:
    require_signed_in(request, database)
    return page(request, database, "change_password.html", nav="security")
