"""Every error class: a unique code, a status, a fixed translated title, a detail whose
placeholders its data can fill in both languages (with plurals where it counts)."""

from __future__ import annotations

from typing import Any

import pytest

import purse.ledger.errors
from i18n_support import import_every_module
from purse.errors import PurseError, all_error_classes, placeholders
from purse.i18n import catalog, normalize_locale, traditional_chinese, translate
from purse.money.amounts import Money
from purse.money.assets import AssetRegistry

import_every_module()
ERRORS = all_error_classes()
CNY = AssetRegistry().get("CNY")


def sample(cls: type[PurseError], count: int = 2) -> PurseError:
    """An instance of ``cls`` with a value for every placeholder of its sentences."""
    names = set()
    for text in (cls.detail, cls.detail_plural, cls.next_step, cls.next_step_plural):
        names |= placeholders(text)
    data: dict[str, Any] = dict.fromkeys(names, "x")
    for name in cls.amount_fields:
        data[name] = Money(2_000_000, CNY)
    for name, words in cls.field_words.items():
        data[name] = sorted(words)[0]
    if cls.count_field:
        data[cls.count_field] = count
    return cls(**data)


def test_every_domain_registers_its_errors() -> None:
    """Importing every module finds the codes the assembly brings in, and more than 100."""
    import purse.app  # noqa: F401 - the app imports every domain

    assert len(ERRORS) >= 100
    assert {"csrf_failed", "limit_exceeded", "asset_unknown", "login_throttled"} <= set(ERRORS)


def test_codes_are_snake_case_and_statuses_are_http_errors() -> None:
    for code, cls in ERRORS.items():
        assert code == cls.code
        assert code.replace("_", "").isalpha() and code.islower(), code
        assert 400 <= cls.status < 600, code
        assert cls.detail.endswith("."), code


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_each_title_is_fixed_short_and_translated(code: str) -> None:
    """RFC 9457: the title is the same for every occurrence, so it carries no data."""
    cls = ERRORS[code]
    assert cls.title.strip(), f"{code} has no title"
    assert "{" not in cls.title and "}" not in cls.title, code
    assert not cls.title.endswith("."), f"{code}: a title is a summary, not a sentence"
    assert len(cls.title) <= 40, code
    assert cls.title != cls.detail, code
    assert catalog("zh-CN").get(cls.title), f"{code}: title not translated"
    error = sample(cls)
    assert error.title_message("zh-CN") == catalog("zh-CN")[cls.title]
    assert error.title_message("en") == cls.title


def test_titles_tell_the_problems_apart() -> None:
    titles = [cls.title for cls in ERRORS.values()]
    assert len(titles) == len(set(titles))


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_each_detail_is_filled_by_its_data_in_both_languages(code: str) -> None:
    cls = ERRORS[code]
    assert placeholders(cls.next_step) | placeholders(cls.next_step_plural) <= placeholders(
        cls.detail
    ) | placeholders(cls.detail_plural), f"{code}: the next step needs data the detail lacks"
    for count in (1, 2):
        error = sample(cls, count)
        for locale in ("en", "zh-CN"):
            message = error.message(locale)
            assert message and "{" not in message, (code, locale, message)
            assert "{" not in error.next_step_message(locale), (code, locale)
        assert error.message("zh-CN") != error.message("en"), code
        assert str(error) == error.message("en")


@pytest.mark.parametrize(
    "code", sorted(code for code, cls in ERRORS.items() if cls.detail_plural or cls.count_field)
)
def test_counted_details_have_both_forms(code: str) -> None:
    cls = ERRORS[code]
    assert cls.count_field in placeholders(cls.detail), code
    assert cls.detail_plural and placeholders(cls.detail_plural) == placeholders(cls.detail)
    if cls.next_step_plural:
        assert placeholders(cls.next_step_plural) == placeholders(cls.next_step)
    assert sample(cls, 1).message("en") != sample(cls, 2).message("en"), code


def test_a_count_chooses_the_english_form_and_chinese_has_one() -> None:
    from purse.identity.errors import LoginThrottled
    from purse.money.errors import AmountScaleExceeded

    assert LoginThrottled(retry_after_seconds=1).message("en") == (
        "Too many attempts. Wait 1 second and try again."
    )
    assert LoginThrottled(retry_after_seconds=8).message("en") == (
        "Too many attempts. Wait 8 seconds and try again."
    )
    assert (
        LoginThrottled(retry_after_seconds=1).message("zh-CN")
        == "尝试次数过多。请等待 1 秒后再试。"
    )
    one = AmountScaleExceeded(asset="XYZ", scale=1, value="1.25")
    assert one.next_step_message("en") == "Round the amount to 1 decimal place."
    assert one.message("en") == "XYZ amounts have at most 1 decimal place; '1.25' has more."


def test_the_failure_catalogue_describes_data_without_placeholders() -> None:
    from purse.operations.errors import LimitExceeded

    message, next_step = LimitExceeded.described("en")
    assert message == "This would go over your ‹period› limit of ‹limit›; ‹remaining› is left."
    assert (
        LimitExceeded.described("zh-CN")[0]
        == "超出了您的‹period›限额 ‹limit›，剩余可用 ‹remaining›。"
    )
    assert next_step.startswith("Send a smaller amount")


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
    assert normalize_locale("zh-TW") == "zh-CN"  # only Simplified is offered, with a notice
    assert normalize_locale("fr") == "en"
    assert normalize_locale(None) == "en"
    assert translate("not a message id", "zh-CN") == "not a message id"
    for tag in ("zh-TW", "zh-HK", "zh-Hant", "zh-Hant-TW", "zh_MO"):
        assert traditional_chinese(tag), tag
    for other in ("zh-CN", "zh", "zh-Hans", "zh-SG", "en", "", None, "zh-Hantx"):
        assert not traditional_chinese(other), other


def test_the_wallet_catalogue_says_what_to_do_next_in_both_languages() -> None:
    from purse.wallet.errors import CATALOGUE

    assert len({cls.code for cls in CATALOGUE}) == len(CATALOGUE) >= 35
    for cls in CATALOGUE:
        if cls.code in {"amount_out_of_range", "asset_unknown", "conversion_same_asset"}:
            continue  # the message says it all
        assert cls.next_step, f"{cls.code} has no next step"
        assert catalog("zh-CN").get(cls.next_step) or cls.next_step_plural, cls.code


def test_words_inside_a_message_are_translated_with_it() -> None:
    from purse.operations.errors import LimitExceeded
    from purse.wallet.errors import MoneyRequestNotOpen

    error = LimitExceeded(period="per_day", limit=Money(500_000, CNY), remaining=Money(0, CNY))
    assert error.message("zh-CN") == "超出了您的每日限额 ¥5,000.00，剩余可用 ¥0.00。"
    assert (
        error.message("en")
        == "This would go over your daily limit of CN¥5,000.00; CN¥0.00 is left."
    )
    assert MoneyRequestNotOpen(status="declined").message("zh-CN") == "该请求已处理（已拒绝）。"


def test_an_amount_must_be_given_as_money_not_text() -> None:
    """A display string would reach programs in one person's language only."""
    from purse.operations.errors import LimitExceeded

    with pytest.raises(TypeError, match="limit must be an amount"):
        LimitExceeded(period="per_day", limit="CN¥5,000.00", remaining=Money(0, CNY))
    error = LimitExceeded(period="per_day", limit=Money(500_000, CNY), remaining=Money(1, CNY))
    assert error.public_data("zh-CN")["limit"] == {"value": "5000.00", "currency": "CNY"}
    assert error.public_data("zh-CN")["limit_display"] == "¥5,000.00"
    assert error.public_data("en")["remaining_display"] == "CN¥0.01"


def test_a_coded_word_is_the_code_in_the_answer_and_the_word_beside_it() -> None:
    """Programs branch on ``per_day``; people read "daily" or "每日"."""
    from purse.operations.errors import LimitExceeded

    error = LimitExceeded(period="per_day", limit=Money(500_000, CNY), remaining=Money(1, CNY))
    assert error.public_data("en")["period"] == "per_day"
    assert error.public_data("en")["period_display"] == "daily"
    assert error.public_data("zh-CN")["period_display"] == "每日"
    with pytest.raises(TypeError, match="period must be one of"):
        LimitExceeded(period="daily", limit=Money(1, CNY), remaining=Money(1, CNY))
