"""HTML pages of the identity domain: sign up, confirm, sign in (with 2FA), security, sign out.

Thin adapters like the JSON routes: check CSRF, open one transaction, call the
service, render. A refused form is shown again with the error in the user's
language and the fields they typed (never the password).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from purse.audit.service import SIGN_IN_KINDS, Actor, recent_activity
from purse.deps import ActorDep, DatabaseDep, IdentityDep, IdPath
from purse.errors import NotFound, PurseError
from purse.i18n import N_, SUPPORTED_LOCALES
from purse.identity import credentials as identity_credentials
from purse.identity import sessions, twofactor
from purse.identity import signin as identity_signin
from purse.identity import signup as identity_signup
from purse.identity import users as identity_users
from purse.identity.codes import code_minutes
from purse.identity.errors import CodeInvalid, SecondFactorRequired
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.notify.service import mailbox
from purse.web.security import check_csrf, cookie_secure
from purse.web.templating import LOCALE_COOKIE
from purse.web.views import (
    SESSION_COOKIE,
    local_path,
    page,
    redirect,
    require_signed_in,
    signed_in,
    signed_in_form,
)

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]
OptionalField = Annotated[str, Form()]


@router.get("/", response_class=HTMLResponse)
def home(request: Request, database: DatabaseDep) -> Response:
    return redirect("/home" if signed_in(request, database) else "/signin")


@router.post("/locale")
def choose_locale(
    request: Request,
    database: DatabaseDep,
    csrf_token: Field = "",
    locale: Field = "en",
    next: Field = "/",
) -> Response:
    check_csrf(request, csrf_token)
    response = redirect(local_path(next))
    if locale in SUPPORTED_LOCALES:
        response.set_cookie(
            LOCALE_COOKIE,
            locale,
            max_age=365 * 24 * 3600,
            samesite="lax",
            secure=cookie_secure(request, database.settings),
            httponly=True,
        )
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, database: DatabaseDep, next: str = "") -> Response:
    return page(request, database, "signin.html", next=local_path(next, ""))


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    identifier: Field = "",
    password: Field = "",
    second_factor: OptionalField = "",
    next: OptionalField = "",
) -> Response:
    check_csrf(request, csrf_token)
    user_agent = request.headers.get("user-agent", "")

    outcome, issued = database.run(
        lambda session: identity_signin.sign_in(
            session,
            identity=identity,
            identifier=identifier,
            password=password,
            second_factor=second_factor or None,
            kind="web",
            user_agent=user_agent,
            actor=actor,
        )
    )
    if outcome.error is not None or issued is None:
        needs_second = isinstance(outcome.error, SecondFactorRequired) or bool(second_factor)
        return page(
            request,
            database,
            "signin.html",
            status_code=outcome.error.status if outcome.error else 400,
            error=None if isinstance(outcome.error, SecondFactorRequired) else outcome.error,
            identifier=identifier,
            second_factor_needed=needs_second,
            next=local_path(next, ""),
        )
    response = redirect(local_path(next, "/home"))
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=cookie_secure(request, database.settings),
        max_age=database.settings.web_session_lifetime_seconds,
    )
    return response


@router.get("/signup", response_class=HTMLResponse)
def signup_form(request: Request, database: DatabaseDep) -> Response:
    return page(request, database, "signup.html", form={})


@router.post("/signup", response_class=HTMLResponse)
def signup(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    display_name: Field = "",
    handle: Field = "",
    phone: OptionalField = "",
    email: OptionalField = "",
    password: Field = "",
) -> Response:
    check_csrf(request, csrf_token)
    form = {"display_name": display_name, "handle": handle, "phone": phone, "email": email}
    locale = request.cookies.get(LOCALE_COOKIE) or (
        "zh-CN" if request.headers.get("accept-language", "").lower().startswith("zh") else "en"
    )
    try:
        database.run(
            lambda session: identity_signup.sign_up(
                session,
                identity=identity,
                handle=handle,
                display_name=display_name,
                password=password,
                locale=locale if locale in SUPPORTED_LOCALES else "en",
                actor=actor,
                phone=phone or None,
                email=email or None,
            )
        )
    except PurseError as error:
        return page(
            request, database, "signup.html", status_code=error.status, error=error, form=form
        )
    return code_page(
        request,
        database,
        "verify.html",
        identifier=email or phone,
        notice=_notice(request, N_("Account created. Confirm your contact with the code we sent.")),
    )


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


def _notice(request: Request, message: str) -> str:
    from purse.i18n import translate
    from purse.web.templating import page_locale

    return translate(message, page_locale(request))


@router.get("/verify", response_class=HTMLResponse)
def verify_form(request: Request, database: DatabaseDep, identifier: str = "") -> Response:
    return code_page(request, database, "verify.html", identifier=identifier)


@router.post("/verify", response_class=HTMLResponse)
def verify(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    identifier: Field = "",
    code: Field = "",
) -> Response:
    check_csrf(request, csrf_token)
    channel = "email" if "@" in identifier else "sms"
    outcome = database.run(
        lambda session: identity_signup.verify_identifier(
            session,
            identity=identity,
            identifier=identifier,
            channel=channel,
            code=code,
            actor=actor,
        )
    )
    if outcome.error is not None:
        return code_page(
            request,
            database,
            "verify.html",
            status_code=outcome.error.status,
            error=outcome.error,
            identifier=identifier,
        )
    return page(
        request,
        database,
        "signin.html",
        identifier=identifier,
        notice=_notice(request, N_("Confirmed. You can sign in now.")),
    )


@router.get("/forgot", response_class=HTMLResponse)
def forgot_form(request: Request, database: DatabaseDep) -> Response:
    return page(request, database, "forgot.html")


@router.post("/forgot", response_class=HTMLResponse)
def forgot(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    identifier: Field = "",
) -> Response:
    check_csrf(request, csrf_token)
    channel = "email" if "@" in identifier else "sms"
    database.run(
        lambda session: identity_credentials.request_password_reset(
            session, identity=identity, identifier=identifier, channel=channel, actor=actor
        )
    )
    return code_page(request, database, "reset.html", identifier=identifier)


@router.post("/reset", response_class=HTMLResponse)
def reset(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    actor: ActorDep,
    csrf_token: Field = "",
    identifier: Field = "",
    code: Field = "",
    new_password: Field = "",
    second_factor: OptionalField = "",
) -> Response:
    check_csrf(request, csrf_token)
    channel = "email" if "@" in identifier else "sms"
    try:
        outcome = database.run(
            lambda session: identity_credentials.reset_password(
                session,
                identity=identity,
                identifier=identifier,
                channel=channel,
                code=code,
                new_password=new_password,
                second_factor=second_factor or None,
                actor=actor,
            )
        )
    except PurseError as error:
        return code_page(
            request,
            database,
            "reset.html",
            status_code=error.status,
            error=error,
            identifier=identifier,
            second_factor_needed=bool(second_factor),
        )
    if outcome.error is not None:
        needs_second = isinstance(outcome.error, SecondFactorRequired) or bool(second_factor)
        shown = None if isinstance(outcome.error, SecondFactorRequired) else outcome.error
        return code_page(
            request,
            database,
            "reset.html",
            status_code=outcome.error.status,
            error=shown,
            identifier=identifier,
            second_factor_needed=needs_second,
        )
    return page(
        request,
        database,
        "signin.html",
        identifier=identifier,
        notice=_notice(request, N_("Password changed. Sign in with the new one.")),
    )


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


def _needs_step_up(database: DatabaseDep, current: sessions.Authenticated, action: str) -> bool:
    return Principal.of_session(current).needs_step_up(
        action, settings=database.settings, now=utc_now()
    )


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
    actor = Actor(
        kind="user",
        id=str(current.user_id),
        address=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", None),
    )
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
            actor=_web_actor(actor, current),
        )
    )
    if outcome.error is not None:
        shown = None if isinstance(outcome.error, SecondFactorRequired) else outcome.error
        return step_up_page(request, database, identity, current, shown, next=target)
    return redirect(target)


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
    if _needs_step_up(database, current, "two_factor"):
        return step_up_page(request, database, identity, current)
    try:
        enrolment = database.run(
            lambda session: twofactor.begin_totp(
                session,
                identity=identity,
                user_id=current.user_id,
                actor=_web_actor(actor, current),
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
                actor=_web_actor(actor, current),
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
                actor=_web_actor(actor, current),
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
    if _needs_step_up(database, current, "two_factor"):
        return step_up_page(request, database, identity, current)
    codes = database.run(
        lambda session: twofactor.regenerate_recovery_codes(
            session, identity=identity, user_id=current.user_id, actor=_web_actor(actor, current)
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
    if _needs_step_up(database, current, "two_factor"):
        return step_up_page(request, database, identity, current)
    database.run(
        lambda session: twofactor.disable_totp(
            session, identity=identity, user_id=current.user_id, actor=_web_actor(actor, current)
        )
    )
    return redirect("/security#two-factor")


def _web_actor(actor: Actor, current: sessions.Authenticated) -> Actor:
    return Actor(
        kind="user", id=str(current.user_id), address=actor.address, request_id=actor.request_id
    )


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
            actor=_web_actor(actor, current),
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
            actor=_web_actor(actor, current),
            reason="ended_by_user",
            except_session_id=current.session_id,
        )
    )
    return redirect("/security")


@router.post("/signout")
def signout(
    request: Request, database: DatabaseDep, actor: ActorDep, csrf_token: Field = ""
) -> Response:
    check_csrf(request, csrf_token)
    current = signed_in(request, database)
    if current is not None:
        database.run(
            lambda session: sessions.end_session(
                session,
                user_id=current.user_id,
                session_id=current.session_id,
                actor=_web_actor(actor, current),
            )
        )
    response = redirect("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/dev/mailbox", response_class=HTMLResponse)
def dev_mailbox(request: Request, database: DatabaseDep, identity: IdentityDep) -> Response:
    """What purse would have sent: only in development, only to this machine, never via a proxy.

    Behind a reverse proxy every visitor looks like 127.0.0.1, so a request that
    carries forwarding headers is refused too.
    """
    local = request.client is not None and request.client.host in {"127.0.0.1", "::1", "testclient"}
    proxied = any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip"))
    if database.settings.env != "development" or not local or proxied:
        return page(request, database, "error.html", status_code=404, problem=NotFound())
    messages = database.run(
        lambda session: mailbox(session, cipher=identity.cipher, limit=100), write=False
    )
    return page(request, database, "mailbox.html", messages=messages)


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
    if _needs_step_up(database, current, "change_password"):
        return step_up_page(request, database, identity, current)
    try:
        database.run(
            lambda session: identity_credentials.change_password(
                session,
                identity=identity,
                user_id=current.user_id,
                keep_session_id=current.session_id,
                new_password=new_password,
                actor=_web_actor(actor, current),
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
