"""Every error class: a unique code, a status, a title translated into zh-CN."""

from __future__ import annotations

import string

import pytest

import purse.funding.errors
import purse.identity.errors
import purse.ledger.errors
import purse.money.errors
import purse.wallet.errors  # noqa: F401 - registers every domain's errors
from purse.errors import PurseError, all_error_classes
from purse.i18n import catalog, normalize_locale, translate


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


ERRORS = all_error_classes()


def test_codes_are_snake_case_and_statuses_are_http_errors() -> None:
    assert len(ERRORS) >= 35
    for code, cls in ERRORS.items():
        assert code == cls.code
        assert code.replace("_", "").isalpha() and code.islower(), code
        assert 400 <= cls.status < 600, code
        assert cls.title.endswith("."), code


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_each_error_is_translated_with_the_same_placeholders(code: str) -> None:
    cls = ERRORS[code]
    zh = catalog("zh-CN").get(cls.title)
    assert zh, f"{code} has no zh-CN translation"
    assert _placeholders(zh) == _placeholders(cls.title)
    error = cls(**dict.fromkeys(_placeholders(cls.title), "x"))
    assert error.message("en") == cls.title.format(**dict.fromkeys(_placeholders(cls.title), "x"))
    assert error.message("zh-CN") != error.message("en")


def test_defining_a_code_twice_is_refused() -> None:
    with pytest.raises(TypeError, match="defined twice"):
        type("Again", (PurseError,), {"code": "insufficient_funds", "title": "x."})


def test_every_ledger_error_has_a_place_in_the_result_order() -> None:
    ledger_codes = {
        cls.code
        for cls in ERRORS.values()
        if cls.__module__ == "purse.ledger.errors"
        and cls.code not in {"account_not_found", "account_status_invalid", "account_not_empty"}
    }
    ordered = [cls.code for cls in purse.ledger.errors.RESULT_ORDER]
    assert len(ordered) == len(set(ordered))
    assert ledger_codes <= set(ordered)


def test_locales() -> None:
    assert normalize_locale("zh-Hans-CN") == "zh-CN"
    assert normalize_locale("zh_CN") == "zh-CN"
    assert normalize_locale("fr") == "en"
    assert normalize_locale(None) == "en"
    assert translate("not a message id", "zh-CN") == "not a message id"


def test_every_template_string_is_translated() -> None:
    import re
    from importlib import resources

    templates = resources.files("purse.web") / "templates"
    strings = {
        match
        for template in templates.iterdir()
        if template.name.endswith(".html")
        for match in re.findall(r'_\("([^"]+)"[,)]', template.read_text("utf-8"))
    }
    assert len(strings) > 150
    from purse.funding import pages as funding_pages
    from purse.funding.simulator import TEST_CARDS
    from purse.identity.pages import ACTIVITY_LABELS
    from purse.operations import kinds
    from purse.wallet.pages import common, sending

    strings |= set(ACTIVITY_LABELS.values()) | set(TEST_CARDS.values())
    strings |= {kind.label for kind in kinds.registered()} | {sending.ASKED, funding_pages.ADDED}
    for labels in (common.STATUS_LABELS, common.EVENT_LABELS, common.DESCRIPTIONS):
        strings |= set(labels.values())
    missing = sorted(text for text in strings if not catalog("zh-CN").get(text))
    assert not missing, missing


def test_the_wallet_catalogue_says_what_to_do_next_in_both_languages() -> None:
    from purse.wallet.errors import CATALOGUE

    assert len({cls.code for cls in CATALOGUE}) == len(CATALOGUE) >= 35
    for cls in CATALOGUE:
        if cls.code in {"amount_out_of_range", "asset_unknown", "conversion_same_asset"}:
            continue  # the message says it all
        assert cls.next_step, f"{cls.code} has no next step"
        zh = catalog("zh-CN").get(cls.next_step)
        assert zh, f"{cls.code}: next step not translated"
        assert _placeholders(zh) == _placeholders(cls.next_step)
        assert _placeholders(cls.next_step) <= _placeholders(cls.title)


def test_words_inside_a_message_are_translated_with_it() -> None:
    from purse.operations.errors import LimitExceeded
    from purse.wallet.errors import MoneyRequestNotOpen

    error = LimitExceeded(period="daily", limit="CN¥5,000.00", remaining="CN¥0.00")
    assert error.message("zh-CN") == "超出了您的每日限额 CN¥5,000.00，剩余可用 CN¥0.00。"
    assert MoneyRequestNotOpen(status="declined").message("zh-CN") == "该请求已处理（已拒绝）。"
