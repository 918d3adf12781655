"""Every string people read has a zh-CN translation, found the way gettext tools find them.

Babel's extractors read the source: Python calls of ``_``, ``gettext``, ``ngettext``,
``translate`` and the markers ``N_``/``N_plural`` (label constants, notices, message
texts), and the templates through Jinja's own extractor (``_()``, ``ngettext()``,
``{% trans %}``). Every error class adds its title, detail, next step and their
plurals. Each message must have a non-empty, non-fuzzy translation with the same
placeholders, and every entry of the catalog must still be used somewhere.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir

import purse
from i18n_support import import_every_module
from purse.errors import all_error_classes
from purse.i18n import read_catalog

SOURCE = Path(purse.__file__).resolve().parent
PYTHON_KEYWORDS = {
    "_": None,
    "gettext": None,
    "translate": None,
    "N_": None,
    "ngettext": (1, 2),
    "N_plural": (1, 2),
}
TEMPLATE_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
_PERCENT = re.compile(r"%\((\w+)\)[sdifr]")

MessageId = str | tuple[str, str]


def placeholders(text: str) -> set[str]:
    """``{name}`` placeholders, or ``%(name)s`` ones in the message ids of ``{% trans %}``."""
    if _PERCENT.search(text):
        return set(_PERCENT.findall(text))
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def extracted() -> dict[MessageId, str]:
    """Each message id found in the source, with where it was found."""
    found: dict[MessageId, str] = {}
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")]
    options = {"**/templates/**.html": TEMPLATE_OPTIONS}
    for filename, line, message, _comments, _context in extract_from_dir(
        SOURCE,
        method_map,
        options_map=options,
        keywords=PYTHON_KEYWORDS,
        directory_filter=lambda path: "migrations" not in Path(path).parts,
    ):
        key: MessageId = message if isinstance(message, str) else (message[0], message[1])
        found.setdefault(key, f"{filename}:{line}")
    import_every_module()
    for code, cls in all_error_classes().items():
        for singular, plural in (
            (cls.title, ""),
            (cls.detail, cls.detail_plural),
            (cls.next_step, cls.next_step_plural),
        ):
            if singular:
                found.setdefault((singular, plural) if plural else singular, f"error {code}")
    return found


MESSAGES = extracted()
CATALOG = read_catalog("zh-CN")


def translation_problem(key: MessageId) -> str | None:
    """What is wrong with the zh-CN translation of ``key`` (None when it is right)."""
    singular = key if isinstance(key, str) else key[0]
    message: Message | None = CATALOG.get(singular)
    if message is None:
        return "no translation"
    if message.fuzzy:
        return "the translation is fuzzy"
    if isinstance(key, tuple):
        if not isinstance(message.id, tuple) or message.id[1] != key[1]:
            return f"the catalog has no plural {key[1]!r}"
        forms = [str(form) for form in message.string or ()]
        expected = placeholders(key[1])
    else:
        if isinstance(message.id, tuple):
            return "the catalog has a plural the source does not use"
        forms = [str(message.string)]
        expected = placeholders(key)
    if not all(form.strip() for form in forms):
        return "an empty translation"
    for form in forms:
        if placeholders(form) != expected:
            return f"placeholders {sorted(placeholders(form))} instead of {sorted(expected)}"
    return None


def test_the_extractors_find_every_kind_of_string() -> None:
    """The extraction itself works: a few strings of each kind are among those found."""
    assert len(MESSAGES) > 500
    for key in (
        "Where you are signed in",  # a template's _()
        "Waiting",  # a label constant, N_()
        "Linked. You can use it to top up and withdraw.",  # a notice, N_()
        "Opening balance",  # translate() in Python
        "Limit exceeded",  # an error's title
        "declined",  # a word of an error's sentence
        (
            "Preparing: {done} of {num} line",
            "Preparing: {done} of {num} lines",
        ),  # ngettext() in a template
        (
            "Too many attempts. Wait {retry_after_seconds} second and try again.",
            "Too many attempts. Wait {retry_after_seconds} seconds and try again.",
        ),  # an error's plural
        ("Must have at most {max_length} character.", "Must have at most {max_length} characters."),
    ):
        assert key in MESSAGES, key


@pytest.mark.parametrize("key", sorted(MESSAGES, key=str), ids=lambda key: str(key)[:60])
def test_every_message_has_a_zh_cn_translation(key: MessageId) -> None:
    assert translation_problem(key) is None, (translation_problem(key), MESSAGES[key])


def test_every_catalog_entry_is_used() -> None:
    """An entry nothing extracts is dead, or its string is shown without a marker."""
    used = {key if isinstance(key, str) else key[0] for key in MESSAGES}
    unused = sorted(
        str(message.id) for message in CATALOG if message.id and _id(message) not in used
    )
    assert not unused, unused


def _id(message: Message) -> str:
    return message.id if isinstance(message.id, str) else str(message.id[0])


def test_the_check_catches_what_it_is_for() -> None:
    """A missing translation, a wrong placeholder and a missing plural are each reported."""
    assert translation_problem("A sentence nobody translated.") == "no translation"
    assert translation_problem(("Waiting", "Waitings")) is not None
    plural = (
        "Preparing: {done} of {num} line",
        "Preparing: {done} of {num} lines",
    )
    assert translation_problem(plural) is None
    assert translation_problem((plural[0], "Preparing: {done} of {total} lines")) is not None
    assert placeholders("{value!r} has {scale} places") == {"value", "scale"}
    assert placeholders("%(count)s lines") == {"count"}
