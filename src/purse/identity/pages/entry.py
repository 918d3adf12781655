"""Getting in and out: the home page, language, sign up, confirm, sign in, reset, sign out,
and the development mailbox."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from purse.deps import ActorDep, DatabaseDep, IdentityDep
from purse.errors import NotFound, PurseError
from purse.i18n import N_, SUPPORTED_LOCALES
from purse.identity import credentials as identity_credentials
from purse.identity import sessions
from purse.identity import signin as identity_signin
from purse.identity import signup as identity_signup
from purse.identity.errors import SecondFactorRequired
from purse.identity.pages.common import (
    Field,
    OptionalField,
    code_page,
    notice,
    web_actor,
)
from purse.notify.service import mailbox
from purse.web.security import check_csrf, cookie_secure
from purse.web.templating import LOCALE_COOKIE
from purse.web.views import (
    SESSION_COOKIE,
    local_path,
    page,
    redirect,
    signed_in,
)

router = APIRouter(include_in_schema=False)


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
        notice=notice(request, N_("Account created. Confirm your contact with the code we sent.")),
    )


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
        notice=notice(request, N_("Confirmed. You can sign in now.")),
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
        notice=notice(request, N_("Password changed. Sign in with the new one.")),
    )


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
                actor=web_actor(actor, current),
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
