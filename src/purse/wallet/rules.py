"""Pure wallet decisions: conversion prices and rates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from purse.money.assets import Asset
from purse.wallet.errors import ConversionTooSmall


def parse_rate(text: str) -> Fraction:
    """A positive decimal rate, exactly, or ValueError."""
    try:
        rate = Decimal(text)
    except InvalidOperation as error:
        raise ValueError(f"{text!r} is not a decimal number") from error
    if not rate.is_finite() or rate <= 0:
        raise ValueError("a rate must be a positive number")
    return Fraction(rate)


def rate_text(rate: Fraction, places: int = 8) -> str:
    """A rate for people: rounded down to ``places`` decimals, trailing zeros dropped."""
    scaled = rate.numerator * 10**places // rate.denominator
    text = f"{Decimal(scaled).scaleb(-places):.{places}f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True, slots=True)
class Price:
    to_amount_minor: int  # what the user receives
    spread_minor: int  # what purse keeps, in the target asset
    rate: Fraction  # the user's rate: target major units per source major unit


def price_conversion(
    *, amount_minor: int, source: Asset, target: Asset, mid_rate: Fraction, spread_bps: int
) -> Price:
    """Convert at the mid rate less the spread, always rounding down in purse's disfavour.

    The user gets ``floor(amount x mid x (1 - spread))``; purse keeps the difference to
    ``floor(amount x mid)``. The arithmetic is exact (fractions), so an inverted rate
    such as 1/7.21 loses nothing to rounding, and both results are whole minor units,
    so the group balances exactly.
    """
    assert 0 <= spread_bps < 10_000
    target_minor = Fraction(amount_minor, source.minor_per_major) * mid_rate
    target_minor *= target.minor_per_major
    customer_rate = mid_rate * Fraction(10_000 - spread_bps, 10_000)
    gross = math.floor(target_minor)
    net = math.floor(target_minor * Fraction(10_000 - spread_bps, 10_000))
    if net <= 0:
        raise ConversionTooSmall()
    return Price(to_amount_minor=net, spread_minor=gross - net, rate=customer_rate)


def invert_rate(rate: Fraction) -> Fraction:
    return 1 / rate
