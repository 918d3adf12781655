"""Server-rendered pages: Jinja2 with autoescape, translated per request (zh-CN, en).

The environment has Jinja's i18n extension. Each render passes the page's
``_``/``gettext`` and ``ngettext``, which fill ``{name}`` placeholders the way the
Python code does: ``{{ _("Hello, {name}", name=me.display_name) }}`` and
``{{ ngettext("{num} line", "{num} lines", total) }}`` (``num`` is the count unless
given). ``{% trans count=n %}...{% pluralize %}...{% endtrans %}`` works too, with
Jinja's own ``%(count)s`` placeholders in its message ids.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_compact_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from purse.devices import device_display
from purse.i18n import (
    DEFAULT_LOCALE,
    SUPPORTED_LOCALES,
    ngettext,
    normalize_locale,
    traditional_chinese,
    translate,
)
from purse.money.amounts import format_amount, to_decimal
from purse.money.assets import AssetRegistry

LOCALE_COOKIE = "purse_locale"


@cache
def environment() -> Environment:
    """The one Jinja environment; English callables are its defaults, each render passes
    the page's own (a shared environment must not be switched per request)."""
    env = Environment(
        loader=PackageLoader("purse.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    gettext, counted = gettext_callables(DEFAULT_LOCALE)
    env.install_gettext_callables(gettext, counted, newstyle=False)  # type: ignore[attr-defined]
    return env


def gettext_callables(locale: str) -> tuple[Callable[..., str], Callable[..., str]]:
    """``gettext`` and ``ngettext`` of ``locale`` for templates, filling ``{name}`` values."""

    def gettext(message: str, **values: Any) -> str:
        text = translate(message, locale)
        return text.format(**values) if values else text

    def counted(singular: str, plural: str, count: int, **values: Any) -> str:
        text = ngettext(singular, plural, count, locale)
        if "%(" in text:  # a {% trans %} block: Jinja fills its %(name)s placeholders itself
            return text
        return text.format(**{"num": count, **values})

    return gettext, counted


def _asked_locale(request: Request) -> str:
    return request.headers.get("accept-language", "").split(",")[0].split(";")[0]


def page_locale(request: Request) -> str:
    chosen = request.cookies.get(LOCALE_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return str(chosen)
    return normalize_locale(request.headers.get("accept-language", "").split(",")[0])


@cache
def _assets(custom: tuple[tuple[str, int], ...]) -> AssetRegistry:
    return AssetRegistry(dict(custom))


class Formats:
    """Money, dates and times for people, in the page's language and the operator's time zone."""

    def __init__(self, locale: str, timezone: str, assets: AssetRegistry) -> None:
        self.locale = locale.replace("-", "_")
        self.zone = ZoneInfo(timezone)
        self.assets = assets

    def money(self, amount_minor: int, code: str, *, signed: bool = False) -> str:
        text = format_amount(abs(amount_minor), self.assets.get(code), self.locale)
        if amount_minor < 0:
            return "\u2212" + text
        return "+" + text if signed else text

    def compact(self, amount_minor: int, code: str) -> str:
        """A short number for charts: 48,200.00 -> "48K" ("4.8万" in Chinese)."""
        asset = self.assets.get(code)
        return format_compact_decimal(
            to_decimal(amount_minor, asset), locale=self.locale, fraction_digits=1
        )

    def when(self, moment: datetime | None, length: str = "medium") -> str:
        return (
            format_datetime(moment, length, tzinfo=self.zone, locale=self.locale) if moment else ""
        )

    def day(self, moment: datetime | None) -> str:
        return (
            format_date(moment.astimezone(self.zone), "medium", locale=self.locale)
            if moment
            else ""
        )

    def device(self, stored: str | None) -> str:
        """A stored device in the page's words: "Android 上的 Chrome（Pixel 8）"."""
        return device_display(stored, self.locale)

    def month(self, label: str, skeleton: str = "yMMM") -> str:
        """ "2026-11" -> "Nov 2026" / "2026年11月" (or "Nov" / "11月" with skeleton "MMM")."""
        year, month = (int(part) for part in label.split("-"))
        return format_skeleton(skeleton, date(year, month, 1), locale=self.locale)


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    locale = page_locale(request)
    gettext, counted = gettext_callables(locale)
    settings = getattr(request.app.state, "settings", None)
    formats = Formats(
        locale,
        settings.timezone if settings else "UTC",
        _assets(tuple(sorted((settings.custom_assets if settings else {}).items()))),
    )

    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            locale=locale,
            _=gettext,
            gettext=gettext,
            ngettext=counted,
            only_simplified_chinese=traditional_chinese(_asked_locale(request)),
            fmt=formats,
            csrf_token=getattr(request.state, "csrf_token", ""),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers={"Content-Language": locale})
