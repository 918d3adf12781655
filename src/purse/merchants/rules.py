"""Pure decisions about merchants: roles, key scopes, the shape of a secret key.

No database and no web framework here; the unit tests run these directly.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class MemberRole(StrEnum):
    owner = "owner"  # everything, the team included
    developer = "developer"  # keys and webhooks, and what support does
    support = "support"  # payments: look, capture, void, refund
    viewer = "viewer"  # look only


class KeyMode(StrEnum):
    test = "test"  # test wallets and the provider simulator: never live money
    live = "live"


class KeyScope(StrEnum):
    payments = "payments"  # create, capture and void payment intents
    refunds = "refunds"
    read = "read"  # read payments, refunds and the balance


# What each role may do for its merchant. Routes ask for a permission, never a role.
ROLE_PERMISSIONS: dict[MemberRole, frozenset[str]] = {
    MemberRole.viewer: frozenset({"merchant:read"}),
    MemberRole.support: frozenset({"merchant:read", "payments:manage"}),
    MemberRole.developer: frozenset({"merchant:read", "payments:manage", "keys:manage"}),
    MemberRole.owner: frozenset(
        {"merchant:read", "payments:manage", "keys:manage", "members:manage", "merchant:manage"}
    ),
}

NAME_LENGTH_MAX = 80
KEY_NAME_LENGTH_MAX = 64
# The secret's random part: 32 bytes, as URL-safe base64 (43 characters).
_SECRET_BYTES = 32
_KEY_PATTERN = re.compile(r"sk_(test|live)_[A-Za-z0-9_-]{43}")
# How long a rolled key keeps working beside its successor, at most (a week).
ROLL_OVERLAP_SECONDS_MAX = 7 * 24 * 3600


def role_allows(role: str, permission: str) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[MemberRole(role)]
    except ValueError:
        return False


def new_secret_key(mode: KeyMode) -> str:
    """A fresh secret key: ``sk_<mode>_`` and 43 random URL-safe characters."""
    return f"sk_{mode.value}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def looks_like_secret_key(text: str) -> bool:
    """Whether ``text`` has a secret key's shape (checked before any look-up)."""
    return _KEY_PATTERN.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class CleanName:
    value: str | None
    reason: str | None = None


def clean_name(text: str, *, length_max: int) -> CleanName:
    """A display name: NFC, trimmed, 1 to ``length_max`` characters, no control characters."""
    value = unicodedata.normalize("NFC", text).strip()
    if not value:
        return CleanName(None, "empty")
    if len(value) > length_max:
        return CleanName(None, "too_long")
    if any(unicodedata.category(character).startswith("C") for character in value):
        return CleanName(None, "control_character")
    return CleanName(value)


def logo_initial(name: str) -> str:
    """The first letter or character of a name, shown where a logo would be."""
    for character in name:
        if character.isalnum():
            return character.upper()
    return "?"


def clean_scopes(scopes: list[str]) -> tuple[KeyScope, ...] | None:
    """Known scopes, at least one, each once, in a fixed order; None if any is unknown."""
    try:
        chosen = {KeyScope(scope) for scope in scopes}
    except ValueError:
        return None
    if not chosen or len(chosen) != len(scopes):
        return None
    return tuple(scope for scope in KeyScope if scope in chosen)


class CaptureMethod(StrEnum):
    automatic = "automatic"  # the money is taken when the customer approves
    manual = "manual"  # it is held until the merchant captures (or voids, or it expires)


class PaymentStatus(StrEnum):
    requires_approval = "requires_approval"
    authorized = "authorized"  # held on the customer's wallet
    captured = "captured"
    voided = "voided"
    expired = "expired"


DESCRIPTION_LENGTH_MAX = 200
ORDER_REFERENCE_LENGTH_MAX = 128
METADATA_KEYS_MAX = 20
METADATA_KEY_LENGTH_MAX = 40
METADATA_VALUE_LENGTH_MAX = 500
_METADATA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_PAYMENT_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_payment_reference() -> str:
    """A payment's public reference: "pay_" and 16 characters (80 random bits)."""
    return "pay_" + "".join(secrets.choice(_PAYMENT_REFERENCE_ALPHABET) for _ in range(16))


def metadata_problem(metadata: dict[str, str]) -> str | None:
    """Why a merchant's metadata is refused, or None: at most 20 keys of letters, digits and
    ``_.-``, each value a string of at most 500 characters with no control characters."""
    if len(metadata) > METADATA_KEYS_MAX:
        return "too_many_keys"
    for key, value in metadata.items():
        if not _METADATA_KEY.fullmatch(key):
            return "key_invalid"
        if len(value) > METADATA_VALUE_LENGTH_MAX:
            return "value_too_long"
        if any(unicodedata.category(character).startswith("C") for character in value):
            return "control_character"
    return None


def shown_status(
    status: str, *, approve_by: datetime, authorized_until: datetime | None, now: datetime
) -> str:
    """A payment's status as of ``now``: one waiting for approval past its window, or
    authorized past the end of its hold, has expired, whether or not the expiry job has
    written so yet."""
    if status == PaymentStatus.requires_approval and approve_by <= now:
        return PaymentStatus.expired.value
    if (
        status == PaymentStatus.authorized
        and authorized_until is not None
        and authorized_until <= now
    ):
        return PaymentStatus.expired.value
    return status


class RefundReason(StrEnum):
    requested_by_customer = "requested_by_customer"
    duplicate = "duplicate"
    not_fulfilled = "not_fulfilled"
    fraudulent = "fraudulent"
    other = "other"


FULFILMENT_REFERENCE_LENGTH_MAX = 128


def new_refund_reference() -> str:
    """A refund's public reference: "re_" and 16 characters (80 random bits)."""
    return "re_" + "".join(secrets.choice(_PAYMENT_REFERENCE_ALPHABET) for _ in range(16))
