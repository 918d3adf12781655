"""Browser-facing protections: strict CSP and security headers, CSRF tokens, cookie flags.

* Every answer: nosniff, no-store unless public, HSTS over HTTPS (``SecurityHeadersMiddleware``).
* CSP allows only our own scripts and styles (no inline code), no framing, and
  forms posting only to us. Only ``/redoc`` gets a policy relaxed where ReDoc
  needs it (``REDOC_CONTENT_SECURITY_POLICY``); see ``SecurityHeadersMiddleware``.
* CSRF: a random token in an HttpOnly, SameSite=Strict cookie and the same
  token in every form (double submit). A POST whose field does not match the
  cookie is refused before its handler runs. With SameSite cookies on top, a
  foreign site can neither read the token nor make the browser send it.
* Cookies are Secure except on plain-HTTP localhost when settings allow it.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from purse.errors import RequestError
from purse.settings import Settings

CSRF_COOKIE = "purse_csrf"
CSRF_FIELD = "csrf_token"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
# ReDoc (the /redoc page) styles itself at run time: styled-components adds <style>
# elements, so styles may be inline there; its search runs in a worker built from a
# blob: URL. Scripts stay 'self' (no inline code, no eval) and no remote origin is
# allowed. Swagger UI (/docs) needs nothing more than the strict policy.
REDOC_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
REDOC_PATH = "/redoc"
_POLICY_BY_PATH = {REDOC_PATH: REDOC_CONTENT_SECURITY_POLICY}
_OTHER_HEADERS = [
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
# Two years, the subdomains too: the value the HSTS preload list asks for.
STRICT_TRANSPORT_SECURITY = b"max-age=63072000; includeSubDomains"
# What a shared cache may keep: the files under /static and the public API schema.
# Everything else (balances, activity, profiles, pages) is one person's, and answers
# "no-store" unless its route chose a Cache-Control of its own.
_CACHEABLE_PREFIXES = ("/static/",)
_CACHEABLE_PATHS = frozenset({"/openapi.json"})


class CsrfFailed(RequestError):
    code = "csrf_failed"
    status = 403
    title = "Form expired"
    detail = "This form has expired or did not come from purse. Reload the page and try again."


class SecurityHeadersMiddleware:
    """Adds the security headers: to every response, and the CSP and its kin to HTML.

    Every response: ``X-Content-Type-Options: nosniff`` (a JSON answer must never be
    sniffed into HTML or script), ``Cache-Control: no-store`` unless the route set its
    own or the path is public (``_CACHEABLE_PREFIXES``), and HSTS when the request came
    over HTTPS. Whether it did is the ASGI scope's scheme: uvicorn sets it from
    X-Forwarded-Proto only for the proxies in ``PURSE_FORWARDED_ALLOW_IPS``, so a client
    cannot claim HTTPS over plain HTTP, where HSTS would mean nothing anyway.

    The policy is chosen here, by exact path, rather than by the docs routes
    setting a header of their own that this middleware would then leave alone:
    with a "keep the route's header" rule, any route could weaken its own policy
    without a line changing in this file, and a typo there would go unnoticed.
    Here every policy purse sends, and the one path that gets the relaxed one,
    can be read in one place. A route may still send a CSP of its own: the
    browser enforces every policy it gets, so that can only tighten this one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path = scope["path"]
        cacheable = path in _CACHEABLE_PATHS or path.startswith(_CACHEABLE_PREFIXES)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = dict(headers)
                if b"x-content-type-options" not in present:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if not cacheable and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if https:
                    headers.append((b"strict-transport-security", STRICT_TRANSPORT_SECURITY))
                content_type = present.get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    policy = _POLICY_BY_PATH.get(path, CONTENT_SECURITY_POLICY)
                    headers.append((b"content-security-policy", policy.encode()))
                    headers.extend(_OTHER_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cookie_secure(request: Request, settings: Settings) -> bool:
    local_http = request.url.scheme == "http" and request.url.hostname in _LOCAL_HOSTS
    return not (settings.cookie_insecure_on_localhost and local_http)


def ensure_csrf_token(request: Request) -> str:
    """The CSRF token for the forms of this page (the cookie's, or a new one)."""
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    request.state.csrf_token = token
    return token


def set_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    token = getattr(request.state, "csrf_token", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=cookie_secure(request, settings),
            path="/",
        )


def check_csrf(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise CsrfFailed()
    request.state.csrf_token = cookie
