"""Templates translate with Jinja's i18n extension: ``_()``, ``ngettext()`` and ``{% trans %}``."""

from __future__ import annotations

import pytest

from purse.web.templating import environment, gettext_callables


def render(source: str, locale: str, **context: object) -> str:
    gettext, ngettext = gettext_callables(locale)
    template = environment().from_string(source)
    return template.render(_=gettext, gettext=gettext, ngettext=ngettext, **context)


@pytest.mark.parametrize(
    ("locale", "count", "expected"),
    [
        ("en", 1, "Preparing: 0 of 1 line"),
        ("en", 12, "Preparing: 0 of 12 lines"),
        ("zh-CN", 1, "正在生成：第 0 行，共 1 行"),
        ("zh-CN", 12, "正在生成：第 0 行，共 12 行"),
    ],
)
def test_ngettext_picks_the_form_and_fills_braces(locale: str, count: int, expected: str) -> None:
    source = (
        '{{ ngettext("Preparing: {done} of {num} line", "Preparing: {done} of {num} lines", '
        "total, done=0) }}"
    )
    assert render(source, locale, total=count) == expected


def test_trans_blocks_pluralize_with_jinjas_own_placeholders() -> None:
    source = (
        "{% trans count=n %}{{ count }} code left"
        "{% pluralize %}{{ count }} codes left{% endtrans %}"
    )
    assert render(source, "en", n=1) == "1 code left"
    assert render(source, "en", n=3) == "3 codes left"


def test_values_are_escaped_but_the_translation_is_not_broken() -> None:
    source = '{{ _("Hello, {name}", name=who) }}'
    assert render(source, "zh-CN", who="<b>Li</b>") == "您好，&lt;b&gt;Li&lt;/b&gt;"
    assert render("{% trans %}Back to purse{% endtrans %}", "zh-CN") == "返回 purse"


def test_the_environment_has_english_defaults_for_a_render_without_a_request() -> None:
    template = environment().from_string('{{ ngettext("{num} day", "{num} days", 2) }}')
    assert template.render() == "2 days"
