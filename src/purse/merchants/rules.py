"""Pure decisions about merchants: roles, key scopes, the shape of a secret key.

No database and no web framework here; the unit tests run these directly.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit


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
    MemberRole.developer: frozenset(
        {"merchant:read", "payments:manage", "keys:manage", "webhooks:manage"}
    ),
    MemberRole.owner: frozenset(
        {
            "merchant:read",
            "payments:manage",
            "keys:manage",
            "webhooks:manage",
            "members:manage",
            "merchant:manage",
        }
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


def settlement_owner(merchant_id: int, mode: str) -> str:
    """The account map's owner of a merchant's settlement accounts in ``mode``."""
    return f"merchant:{merchant_id}:{mode}"


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


# Webhooks ---------------------------------------------------------------------------------

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
_WEBHOOK_SECRET_BYTES = 24
WEBHOOK_URL_LENGTH_MAX = 2048
# What purse keeps of an endpoint's answer, for the delivery log.
WEBHOOK_RESPONSE_EXCERPT_MAX = 1024
# How long an attempt in flight holds its delivery before another worker may try again.
WEBHOOK_LEASE_SECONDS = 120


def new_webhook_secret() -> str:
    """A signing secret as Standard Webhooks writes it: ``whsec_`` and base64 of 24 bytes."""
    return (
        WEBHOOK_SECRET_PREFIX
        + base64.b64encode(secrets.token_bytes(_WEBHOOK_SECRET_BYTES)).decode()
    )


def new_message_id() -> str:
    """A webhook message's id (the ``webhook-id`` header): "msg_" and 26 characters."""
    return "msg_" + "".join(secrets.choice(_PAYMENT_REFERENCE_ALPHABET) for _ in range(26))


def clean_event_types(requested: list[str], known: tuple[str, ...]) -> tuple[str, ...] | None:
    """The event types an endpoint asked for, known and each once, in a stable order."""
    if not requested or len(set(requested)) != len(requested):
        return None
    if any(event not in known for event in requested):
        return None
    return tuple(event for event in known if event in requested)


def webhook_url_problem(url: str) -> str | None:
    """Why a webhook URL is refused before any look-up, or None: http(s) only, a host, no
    user name or password in it, no fragment."""
    if len(url) > WEBHOOK_URL_LENGTH_MAX or any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "malformed"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "malformed"
    if parts.scheme not in ("https", "http"):
        return "scheme"
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return "host"
    if parts.fragment or (port is not None and not 0 < port < 65536):
        return "malformed"
    return None


def address_problem(address: str) -> str | None:
    """Why an endpoint's resolved address may not be called from a production server, or
    None: loopback, private, link-local, multicast, reserved and unspecified addresses
    (and IPv6 forms of them) are inside the operator's network, not a merchant's."""
    found = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        found = found.ipv4_mapped
    if found.is_loopback:
        return "loopback"
    if found.is_link_local:
        return "link_local"
    if found.is_private or found.is_reserved or found.is_multicast or found.is_unspecified:
        return "private"
    if not found.is_global:
        return "private"
    return None


def next_attempt_after(attempts: int, waits: list[int]) -> int | None:
    """Seconds until the next attempt after ``attempts`` failed ones, or None: give up."""
    if attempts < 1 or attempts > len(waits):
        return None
    return waits[attempts - 1]
