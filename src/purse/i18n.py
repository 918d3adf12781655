"""Translations: English message ids, zh-CN from a gettext catalog read by Babel.

The catalog is a plain ``.po`` file under ``web/translations``. It is compiled in
memory (``write_mo``) into ``babel.support.Translations`` the first time a locale
is asked for, so there is no compile step to forget and plural forms follow the
catalog's ``Plural-Forms`` header (Chinese has one form, English two).

Messages use ``{name}`` placeholders filled with ``str.format`` after translation,
in Python and in templates alike; a count that chooses the plural form is passed
as well (``ngettext("Wait {seconds} second", "Wait {seconds} seconds", n)``).

``N_()`` marks a string for the catalog without translating it: label constants
are English message ids, translated where they are shown.

Only Simplified Chinese is offered: every ``zh`` tag maps to zh-CN, and
``traditional_chinese`` tells pages to say so to a reader who asked for
Traditional Chinese (zh-TW, zh-HK, zh-MO, zh-Hant).
"""

from __future__ import annotations

import gettext as stdlib_gettext
from functools import cache
from importlib import resources
from io import BytesIO

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "zh-CN")
DOMAIN = "messages"
_TRADITIONAL = ("zh-tw", "zh-hk", "zh-mo", "zh-hant")


def N_(message: str) -> str:  # noqa: N802 - the name extractors and translators know
    """Mark ``message`` for the catalog; it is translated where it is shown."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802
    """Mark a singular and a plural for the catalog, for ``ngettext`` where it is shown."""
    return singular, plural


def normalize_locale(locale: str | None) -> str:
    """Map an Accept-Language style tag onto a supported locale."""
    if not locale:
        return DEFAULT_LOCALE
    tag = locale.replace("_", "-").strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    return DEFAULT_LOCALE


def traditional_chinese(locale: str | None) -> bool:
    """Whether ``locale`` asks for Traditional Chinese, which purse does not offer."""
    tag = (locale or "").replace("_", "-").strip().lower()
    return any(tag == prefix or tag.startswith(prefix + "-") for prefix in _TRADITIONAL)


def read_catalog(locale: str) -> Catalog:
    """The ``.po`` catalog of ``locale`` as Babel reads it."""
    folder = locale.replace("-", "_")
    path = resources.files("purse.web") / "translations" / folder / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=folder, domain=DOMAIN)


@cache
def translations(locale: str) -> stdlib_gettext.NullTranslations:
    """gettext for ``locale``: the catalog compiled in memory (English is the source)."""
    locale = normalize_locale(locale)
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    compiled = BytesIO()
    write_mo(compiled, read_catalog(locale), use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@cache
def catalog(locale: str) -> dict[str, str]:
    """The translated singular messages of ``locale`` (empty for English, the source)."""
    if normalize_locale(locale) == DEFAULT_LOCALE:
        return {}
    return {
        str(message.id): str(message.string)
        for message in read_catalog(locale)
        if message.id
        and isinstance(message.id, str)
        and isinstance(message.string, str)
        and message.string
        and not message.fuzzy
    }


def translate(message_id: str, locale: str) -> str:
    """``message_id`` in ``locale`` (the id itself when the catalog has no translation)."""
    return translations(normalize_locale(locale)).gettext(message_id)


def ngettext(singular: str, plural: str, count: int, locale: str) -> str:
    """The form of ``singular``/``plural`` that ``count`` takes in ``locale``, not filled in."""
    return translations(normalize_locale(locale)).ngettext(singular, plural, count)
