"""Pure rules around money: masked names, references, limits, conversion prices, card checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from purse.errors import PurseError
from purse.funding import rules as card_rules
from purse.identity import rules as identity_rules
from purse.money.assets import AssetRegistry
from purse.operations import rules as operation_rules
from purse.operations.spending import slot_of
from purse.settings import DEFAULT_WALLET_LIMITS
from purse.wallet import rules

ASSETS = AssetRegistry({"PTS": 0})
CNY, USD, JPY = ASSETS.get("CNY"), ASSETS.get("USD"), ASSETS.get("JPY")


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Zhang Wei", "Z*** W***"),
        ("Lucky  Coffee Shop", "L*** C*** S***"),
        ("张伟", "*伟"),
        ("欧阳娜娜", "***娜"),
        ("王", "王***"),
        ("", "***"),
    ],
)
def test_masked_names_show_enough_to_recognise(name: str, masked: str) -> None:
    assert identity_rules.mask_name(name) == masked


def test_references_are_readable_and_random() -> None:
    made = {operation_rules.new_reference() for _ in range(1000)}
    assert len(made) == 1000
    assert all(len(r) == 12 and r.startswith("PW") and not set(r) & set("ILOU") for r in made)
    assert operation_rules.normalize_reference(" pw7k3d-9qxm 2a ") == "PW7K3D9QXM2A"


def test_limits_pick_the_highest_level_reached_and_the_asset_or_default() -> None:
    level0 = operation_rules.limits_for(DEFAULT_WALLET_LIMITS, kyc_level=0, asset=CNY)
    level5 = operation_rules.limits_for(DEFAULT_WALLET_LIMITS, kyc_level=5, asset=CNY)
    other = operation_rules.limits_for(DEFAULT_WALLET_LIMITS, kyc_level=1, asset=JPY)
    assert level0 == operation_rules.Limits(
        per_transfer=200_000, per_day=500_000, per_month=2_000_000
    )
    assert level5 is not None and level5.per_transfer == 20_000_000  # level 2's
    assert other == operation_rules.Limits(per_transfer=3_000, per_day=8_000, per_month=30_000)
    assert operation_rules.limits_for({"3": {}}, kyc_level=1, asset=CNY) is None


def test_calendar_periods_follow_the_operators_time_zone() -> None:
    late_evening_utc = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 1 Dec 01:00 in Shanghai
    day, month = operation_rules.period_starts(late_evening_utc, "Asia/Shanghai")
    assert (day.date(), month.date()) == (date(2026, 12, 1), date(2026, 12, 1))
    day, month = operation_rules.period_starts(late_evening_utc, "UTC")
    assert (day.date(), month.date()) == (date(2026, 11, 30), date(2026, 11, 1))


def test_an_inverted_rate_is_exact() -> None:
    mid = rules.invert_rate(rules.parse_rate("7.21"))
    price = rules.price_conversion(
        amount_minor=72_100, source=CNY, target=USD, mid_rate=mid, spread_bps=50
    )
    assert (price.to_amount_minor, price.spread_minor) == (9_950, 50)
    assert rules.rate_text(price.rate) == "0.13800277"


@given(
    amount=st.integers(min_value=1, max_value=10**12),
    rate=st.decimals(min_value="0.0001", max_value="10000", places=6),
    spread=st.integers(min_value=0, max_value=500),
)
def test_conversions_never_give_more_than_the_mid_rate(
    amount: int, rate: object, spread: int
) -> None:
    mid = rules.parse_rate(str(rate))
    try:
        price = rules.price_conversion(
            amount_minor=amount, source=CNY, target=JPY, mid_rate=mid, spread_bps=spread
        )
    except PurseError as error:
        assert error.code == "conversion_too_small"
        return
    exact = Fraction(amount, 100) * mid
    assert (
        price.to_amount_minor + price.spread_minor
        <= exact
        < price.to_amount_minor + price.spread_minor + 1
    )
    assert price.spread_minor >= 0 and price.to_amount_minor >= 1


@pytest.mark.parametrize("text", ["0", "-1", "abc", "NaN", "Infinity"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate|decimal"):
        rules.parse_rate(text)


def test_card_checks() -> None:
    assert card_rules.normalize_card_number("4242-4242 4242 4242") == "4242424242424242"
    assert card_rules.card_brand("5555555555554444") == "Mastercard"
    assert card_rules.card_brand("6222021001123220") == "UnionPay"
    assert card_rules.card_brand("378282246310005") == "American Express"
    today = date(2026, 11, 23)
    assert card_rules.check_expiry(11, 26, today=today) == (11, 2026)
    for month, year, code in [(10, 2026, "card_expired"), (0, 2030, "card_expiry_invalid")]:
        with pytest.raises(PurseError) as refused:
            card_rules.check_expiry(month, year, today=today)
        assert refused.value.code == code
    with pytest.raises(PurseError):
        card_rules.normalize_account_number("12-34")


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "UTC"])
def test_every_local_midnight_starts_a_spending_slot(zone: str) -> None:
    """Running totals are kept per 15-minute slot: a day or month in any zone is whole slots."""
    for day in range(1, 29, 3):
        now = datetime(2026, 3, day, 13, 7, 59, tzinfo=UTC)
        day_start, month_start = operation_rules.period_starts(now, zone)
        assert slot_of(day_start) == day_start and slot_of(month_start) == month_start
    moment = datetime(2026, 3, 1, 13, 44, 59, 999_999, tzinfo=UTC)
    assert slot_of(moment) == datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
