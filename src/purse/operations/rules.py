"""Pure decisions about operations: references, request fingerprints, idempotency keys, limits."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from purse.ledger.errors import IdempotencyKeyInvalid
from purse.money.amounts import Money, parse_amount
from purse.money.assets import Asset
from purse.operations.errors import LimitExceeded

# Crockford's base32 without the letters people misread (I, L, O, U).
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_PREFIX = "PW"


def new_reference() -> str:
    """A reference a user can read out to support: "PW" and 10 characters (50 random bits)."""
    return REFERENCE_PREFIX + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))


def normalize_reference(reference: str) -> str:
    return reference.strip().upper().replace("-", "").replace(" ", "")


def check_idempotency_key(key: str, *, length_max: int) -> str:
    """A client's key: 1 to ``length_max`` printable ASCII characters."""
    if not (1 <= len(key) <= length_max and key.isascii() and key.isprintable()):
        raise IdempotencyKeyInvalid(length_max=length_max)
    return key


def fingerprint(request: dict[str, object]) -> str:
    """A digest of what was asked, to tell a retry from another request under the same key."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


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
) -> None:
    """Refuse an amount that goes over a limit, saying which and how much is left."""
    checks = (
        ("per_transfer", limits.per_transfer, 0),
        ("per_day", limits.per_day, spent_today_minor),
        ("per_month", limits.per_month, spent_month_minor),
    )
    for period, limit, spent in checks:
        if spent + amount_minor > limit:
            raise LimitExceeded(
                period=period,
                limit=Money(limit, asset),
                remaining=Money(max(0, limit - spent), asset),
            )


def large_transfer_from(table: dict[str, str], asset: Asset) -> int | None:
    """The amount from which money leaving in ``asset`` is a large transfer (None: never)."""
    value = table.get(asset.code, table.get("*"))
    return parse_amount(value, asset) if value is not None else None


def request_amount_max(
    table: dict[str, dict[str, dict[str, str]]], *, kyc_level: int, asset: Asset
) -> int | None:
    """The most a user at ``kyc_level`` could pay in one transfer (None: no limits apply).

    A money request asks for one transfer, so asking for more than this is asking for
    something the payer cannot do.
    """
    limits = limits_for(table, kyc_level=kyc_level, asset=asset)
    return limits.per_transfer if limits is not None else None
