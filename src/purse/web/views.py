"""What every HTML route shares: rendering a page with its CSRF token, redirects, who is signed in.

Each domain's ``pages.py`` uses these, so the session cookie, the CSRF check and
the "only a path on this site" rule for redirects live in one place.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from purse.db import Database
from purse.identity import sessions
from purse.identity.errors import SessionInvalid
from purse.identity.principal import Principal
from purse.web.security import check_csrf, ensure_csrf_token, set_csrf_cookie
from purse.web.templating import render

SESSION_COOKIE = "purse_session"


def page(
    request: Request,
    database: Database,
    template: str,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    """Render ``template`` with a CSRF token for its forms (set as a cookie if new)."""
    ensure_csrf_token(request)
    response = render(request, template, status_code=status_code, **context)
    set_csrf_cookie(request, response, database.settings)
    return response


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site; "//host" and "/\\host" would leave it."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def signed_in(request: Request, database: Database) -> sessions.Authenticated | None:
    """The web session of the cookie, if it is still valid."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return sessions.authenticate_request(database, token=token, kind="web")
    except SessionInvalid:
        return None


class SignInNeeded(Exception):  # noqa: N818 - control flow, answered with a redirect
    """A page for signed-in users was opened without a session: go to sign-in, then back."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def require_signed_in(request: Request, database: Database) -> sessions.Authenticated:
    """The signed-in user, or :class:`SignInNeeded` (the app redirects to the sign-in page)."""
    current = signed_in(request, database)
    if current is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise SignInNeeded(request.url.path + query)
    return current


def signed_in_principal(request: Request, database: Database) -> Principal:
    """The signed-in person as a principal (or a redirect to sign in, then back)."""
    address = request.client.host if request.client else None
    return Principal.of_session(require_signed_in(request, database), address=address)


def form_principal(request: Request, database: Database, csrf_token: str) -> Principal:
    """A form posted from a signed-in page: its CSRF token first, then who posted it."""
    check_csrf(request, csrf_token)
    return signed_in_principal(request, database)


def sign_in_redirect(path: str) -> RedirectResponse:
    from urllib.parse import urlencode

    return redirect("/signin?" + urlencode({"next": local_path(path)}))


def signed_in_form(
    request: Request, database: Database, csrf_token: str
) -> sessions.Authenticated | None:
    """A form posted from a signed-in page: its CSRF token first, then the session."""
    check_csrf(request, csrf_token)
    return signed_in(request, database)
