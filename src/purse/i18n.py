"""Translations: English message ids, zh-CN from a gettext catalog read by Babel.

The catalogs are plain ``.po`` files under ``web/translations``; Babel reads them
directly, so there is no compile step to forget.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from babel.messages.pofile import read_po

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "zh-CN")


def normalize_locale(locale: str | None) -> str:
    """Map an Accept-Language style tag onto a supported locale."""
    if not locale:
        return DEFAULT_LOCALE
    tag = locale.replace("_", "-").strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    return DEFAULT_LOCALE


@cache
def catalog(locale: str) -> dict[str, str]:
    """The translated messages of ``locale`` (empty for English, the source language)."""
    if locale == DEFAULT_LOCALE:
        return {}
    folder = locale.replace("-", "_")
    path = resources.files("purse.web") / "translations" / folder / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        po = read_po(handle, locale=folder)
    return {
        str(message.id): str(message.string)
        for message in po
        if message.id and message.string and not message.fuzzy
    }


def translate(message_id: str, locale: str) -> str:
    return catalog(normalize_locale(locale)).get(message_id, message_id)
