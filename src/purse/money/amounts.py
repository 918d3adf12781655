"""Parsing and formatting of amounts.

Amounts travel as decimal strings at the asset's scale ("12.34" CNY) and live
as integers of minor units (1234). Parsing is strict: anything that is not a
plain decimal, has more digits than the scale, or does not fit in a signed 64-bit
integer is refused with its own code. Nothing is ever rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import (
    NumberFormatError,
    format_currency,
    format_decimal,
    get_decimal_symbol,
    get_group_symbol,
    parse_decimal,
)

from purse.money.assets import Asset
from purse.money.errors import (
    AmountInvalid,
    AmountNotPositive,
    AmountOutOfRange,
    AmountScaleExceeded,
)

INT64_MAX = 2**63 - 1
_DECIMAL = re.compile(r"^(?P<sign>-?)(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?$")
_VALUE_LENGTH_MAX = 64


@lru_cache(maxsize=16)  # the few locales purse speaks; bounded all the same
def _babel(locale: str) -> Locale:
    """babel's locale for ours ("zh-CN"), parsed once: a payment formats two amounts."""
    return Locale.parse(locale.replace("-", "_"))


def parse_amount(value: str, asset: Asset, *, positive: bool = True) -> int:
    """The minor units of ``value``, a decimal string, in ``asset``."""
    if not isinstance(value, str) or len(value) > _VALUE_LENGTH_MAX:
        raise AmountInvalid(value=str(value)[:_VALUE_LENGTH_MAX])
    match = _DECIMAL.match(value.strip())
    if match is None:
        raise AmountInvalid(value=value)
    fraction = match["fraction"] or ""
    significant = fraction.rstrip("0")
    if len(significant) > asset.scale:
        raise AmountScaleExceeded(asset=asset.code, scale=asset.scale, value=value)
    minor = int(match["whole"]) * asset.minor_per_major + int(
        (significant + "0" * asset.scale)[: asset.scale] or "0"
    )
    if match["sign"]:
        minor = -minor
    if abs(minor) > INT64_MAX:
        raise AmountOutOfRange(value=value)
    if positive and minor <= 0:
        raise AmountNotPositive(value=value)
    return minor


def parse_typed_amount(text: str, asset: Asset, locale: str) -> int:
    """The minor units of an amount a person typed in a form, in their ``locale``.

    People type grouping separators ("1,000.50"), so forms accept them, but only
    where the locale puts them: "1,00" or "1,5" is refused with ``amount_invalid``
    rather than read as 100 or 15. Babel's strict parser decides, per locale; its
    result is then held to the same rules as the API's (:func:`parse_amount`).
    Exponents, "NaN" and anything but digits and the locale's two separators are
    refused outright.
    """
    cleaned = text.strip()
    babel_locale = _babel(locale)
    allowed = {get_group_symbol(babel_locale), get_decimal_symbol(babel_locale), "-"}
    if (
        not cleaned
        or len(cleaned) > _VALUE_LENGTH_MAX
        or not all(char.isdigit() or char in allowed for char in cleaned)
    ):
        raise AmountInvalid(value=cleaned[:_VALUE_LENGTH_MAX])
    try:
        number = parse_decimal(cleaned, locale=babel_locale, strict=True)
    except NumberFormatError as error:
        raise AmountInvalid(value=cleaned) from error
    if not number.is_finite():
        raise AmountInvalid(value=cleaned)
    return parse_amount(f"{number:f}", asset)


def to_decimal(amount_minor: int, asset: Asset) -> Decimal:
    return Decimal(amount_minor).scaleb(-asset.scale)


def to_string(amount_minor: int, asset: Asset) -> str:
    """The canonical decimal string of an amount: "12.30" for 1230 CNY."""
    return f"{to_decimal(amount_minor, asset):.{asset.scale}f}"


def format_amount(amount_minor: int, asset: Asset, locale: str) -> str:
    """An amount for people to read, in ``locale`` ("¥12.30", "US$1,234.00")."""
    babel_locale = _babel(locale)
    number = to_decimal(amount_minor, asset)
    if asset.is_currency:
        return format_currency(number, asset.code, locale=babel_locale, currency_digits=True)
    pattern = "#,##0" + ("." + "0" * asset.scale if asset.scale else "")
    return f"{format_decimal(number, format=pattern, locale=babel_locale)} {asset.code}"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount with its asset, for messages and answers that must show both.

    In an error's data it is shown to people as a display string in their language
    ("¥20,000.00") and given to programs as ``{"value": "20000.00", "currency": "CNY"}``.
    """

    amount_minor: int
    asset: Asset

    def display(self, locale: str) -> str:
        return format_amount(self.amount_minor, self.asset, locale)

    def as_json(self) -> dict[str, str]:
        return {"value": to_string(self.amount_minor, self.asset), "currency": self.asset.code}

    def __str__(self) -> str:
        return self.display("en")
