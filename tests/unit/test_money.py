"""Assets and amounts: strict parsing, per-locale formatting, never a float."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.money import AssetRegistry, format_amount, parse_amount
from purse.money.amounts import INT64_MAX, to_string
from purse.money.errors import (
    AmountInvalid,
    AmountNotPositive,
    AmountOutOfRange,
    AmountScaleExceeded,
    AssetUnknown,
)

REGISTRY = AssetRegistry({"USDT": 6, "BTCX": 8})


def test_iso_scales_come_from_babel() -> None:
    assert [REGISTRY.get(c).scale for c in ("CNY", "USD", "JPY", "KWD")] == [2, 2, 0, 3]
    assert len(REGISTRY) > 150
    assert REGISTRY.get("cny").code == "CNY"
    assert REGISTRY.get("USDT").scale == 6 and not REGISTRY.get("USDT").is_currency


def test_unknown_asset_and_clashing_custom_asset() -> None:
    with pytest.raises(AssetUnknown):
        REGISTRY.get("XYZ1")
    assert "XYZ1" not in REGISTRY
    with pytest.raises(ValueError, match="clashes"):
        AssetRegistry({"USD": 2})


@pytest.mark.parametrize(
    ("value", "code", "minor"),
    [
        ("12.34", "CNY", 1234),
        ("12.340", "CNY", 1234),
        ("12", "CNY", 1200),
        ("0.01", "CNY", 1),
        ("1000", "JPY", 1000),
        ("1.005", "KWD", 1005),
        ("0.00000001", "BTCX", 1),
    ],
)
def test_parse_amount(value: str, code: str, minor: int) -> None:
    assert parse_amount(value, REGISTRY.get(code)) == minor


@pytest.mark.parametrize(
    ("value", "code", "error"),
    [
        ("12.345", "CNY", AmountScaleExceeded),
        ("1.5", "JPY", AmountScaleExceeded),
        ("0", "CNY", AmountNotPositive),
        ("0.00", "CNY", AmountNotPositive),
        ("-1", "CNY", AmountNotPositive),
        ("92233720368547758.08", "CNY", AmountOutOfRange),
        ("abc", "CNY", AmountInvalid),
        ("1e5", "CNY", AmountInvalid),
        ("1,000", "CNY", AmountInvalid),
        (" ", "CNY", AmountInvalid),
        ("NaN", "CNY", AmountInvalid),
        ("1" * 65, "CNY", AmountInvalid),
    ],
)
def test_parse_amount_refuses_with_its_own_code(
    value: str, code: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        parse_amount(value, REGISTRY.get(code))


def test_largest_amount_fits_and_negative_allowed_when_asked() -> None:
    assert parse_amount("92233720368547758.07", REGISTRY.get("CNY")) == INT64_MAX
    assert parse_amount("-1.50", REGISTRY.get("CNY"), positive=False) == -150


@given(
    st.integers(min_value=1, max_value=INT64_MAX), st.sampled_from(["CNY", "JPY", "KWD", "USDT"])
)
def test_parse_is_the_inverse_of_to_string(minor: int, code: str) -> None:
    asset = REGISTRY.get(code)
    assert parse_amount(to_string(minor, asset), asset) == minor


@pytest.mark.parametrize(
    ("minor", "code", "locale", "text"),
    [
        (123456, "CNY", "zh-CN", "¥1,234.56"),
        (123456, "USD", "en", "$1,234.56"),
        (123456, "USD", "zh-CN", "US$1,234.56"),
        (1234, "JPY", "en", "¥1,234"),
        (123456789, "USDT", "en", "123.456789 USDT"),
    ],
)
def test_format_amount_per_locale(minor: int, code: str, locale: str, text: str) -> None:
    assert format_amount(minor, REGISTRY.get(code), locale) == text


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_amounts_typed_in_forms_are_read_strictly_in_both_locales(locale: str) -> None:
    from purse.money.amounts import parse_typed_amount
    from purse.money.assets import AssetRegistry
    from purse.money.errors import AmountInvalid, AmountScaleExceeded

    cny = AssetRegistry({}).get("CNY")
    assert parse_typed_amount("1,000.50", cny, locale) == 100_050
    assert parse_typed_amount(" 20 ", cny, locale) == 2_000
    assert parse_typed_amount("１２", cny, locale) == 1_200  # full-width digits from an IME
    for misread in ("1,00", "1,5", "1.000,5", "1,0000", "1e5", "NaN", "Infinity", "1 000", "¥5"):
        with pytest.raises(AmountInvalid):
            parse_typed_amount(misread, cny, locale)
    with pytest.raises(AmountScaleExceeded):
        parse_typed_amount("1.001", cny, locale)
