"""Server-rendered pages: Jinja2 with autoescape, translated per request (zh-CN, en)."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from purse.i18n import SUPPORTED_LOCALES, normalize_locale, translate

LOCALE_COOKIE = "purse_locale"


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("purse.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page_locale(request: Request) -> str:
    chosen = request.cookies.get(LOCALE_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return str(chosen)
    return normalize_locale(request.headers.get("accept-language", "").split(",")[0])


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    locale = page_locale(request)

    def gettext(message: str, **values: Any) -> str:
        text = translate(message, locale)
        return text.format(**values) if values else text

    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            locale=locale,
            _=gettext,
            csrf_token=getattr(request.state, "csrf_token", ""),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers={"Content-Language": locale})
