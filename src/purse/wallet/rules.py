"""Pure wallet decisions: references, masked names, limits, conversion prices."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from zoneinfo import ZoneInfo

from purse.ledger.errors import IdempotencyKeyInvalid
from purse.money.amounts import parse_amount
from purse.money.assets import Asset
from purse.wallet.errors import ConversionTooSmall, LimitExceeded

# Crockford's base32 without the letters people misread (I, L, O, U).
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_PREFIX = "PW"
IDEMPOTENCY_KEY_LENGTH_MAX = 255


def new_reference() -> str:
    """A reference a user can read out to support: "PW" and 10 characters (50 random bits)."""
    return REFERENCE_PREFIX + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))


def normalize_reference(reference: str) -> str:
    return reference.strip().upper().replace("-", "").replace(" ", "")


def check_idempotency_key(key: str) -> str:
    if not (1 <= len(key) <= IDEMPOTENCY_KEY_LENGTH_MAX and key.isascii() and key.isprintable()):
        raise IdempotencyKeyInvalid(length_max=IDEMPOTENCY_KEY_LENGTH_MAX)
    return key


def fingerprint(request: dict[str, object]) -> str:
    """A digest of what was asked, to tell a retry from another request under the same key."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def _is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in {"W", "F"}


def mask_name(name: str) -> str:
    """Enough of a name to recognise the right person, not to learn who they are.

    "Zhang Wei" -> "Z*** W***"; a name written without spaces in Chinese characters
    keeps its last character, as Chinese wallets do: "张伟" -> "*伟", "欧阳娜娜" -> "***娜".
    """
    words = name.split()
    if not words:
        return "***"
    if len(words) == 1 and len(words[0]) > 1 and all(_is_cjk(c) for c in words[0]):
        word = words[0]
        return "*" * (len(word) - 1) + word[-1]
    return " ".join(word[0] + "***" for word in words)


# Limits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    per_transfer: int
    per_day: int
    per_month: int


def limits_for(
    table: dict[str, dict[str, dict[str, str]]], *, kyc_level: int, asset: Asset
) -> Limits | None:
    """The limits of the highest configured level at or below ``kyc_level`` (None: no limits)."""
    levels = sorted((int(level) for level in table if int(level) <= kyc_level), reverse=True)
    if not levels:
        return None
    by_asset = table[str(levels[0])]
    values = by_asset.get(asset.code) or by_asset.get("*")
    if values is None:
        return None
    return Limits(
        per_transfer=parse_amount(values["per_transfer"], asset),
        per_day=parse_amount(values["per_day"], asset),
        per_month=parse_amount(values["per_month"], asset),
    )


def period_starts(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The start of today and of this month in ``timezone``, as aware datetimes."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def check_limits(
    limits: Limits,
    *,
    amount_minor: int,
    spent_today_minor: int,
    spent_month_minor: int,
    asset: Asset,
    locale: str = "en",
) -> None:
    """Refuse an amount that goes over a limit, saying which and how much is left."""
    from purse.money.amounts import format_amount

    checks = (
        ("per_transfer", limits.per_transfer, 0),
        ("per_day", limits.per_day, spent_today_minor),
        ("per_month", limits.per_month, spent_month_minor),
    )
    for period, limit, spent in checks:
        if spent + amount_minor > limit:
            raise LimitExceeded(
                period=_PERIOD_NAMES[period],
                limit=format_amount(limit, asset, locale),
                remaining=format_amount(max(0, limit - spent), asset, locale),
                limit_period=period,
            )


_PERIOD_NAMES = {"per_transfer": "per-transfer", "per_day": "daily", "per_month": "monthly"}


# Conversion ------------------------------------------------------------------------------


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
