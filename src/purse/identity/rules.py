"""Pure identity decisions: normalising contacts and handles, throttling arithmetic."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from purse.identity.errors import DisplayNameInvalid, EmailInvalid, HandleInvalid, PhoneInvalid

_HANDLE = re.compile(r"^[a-z][a-z0-9_]{2,31}$")
DELAY_SECONDS_MAX = 300


def normalize_handle(handle: str) -> str:
    value = handle.strip().lstrip("@").lower()
    if not _HANDLE.match(value):
        raise HandleInvalid()
    return value


def normalize_phone(phone: str) -> str:
    """E.164 ("+8613800138000"); a number without its country code is refused."""
    try:
        parsed = phonenumbers.parse(phone.strip(), None)
    except phonenumbers.NumberParseException as error:
        raise PhoneInvalid() from error
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneInvalid()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(email: str) -> str:
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise EmailInvalid() from error
    return str(result.normalized).lower()


def normalize_display_name(name: str) -> str:
    value = " ".join(name.split())
    if not 1 <= len(value) <= 64 or not value.isprintable():
        raise DisplayNameInvalid()
    return value


def identifier_kind(identifier: str) -> str:
    """What a login identifier is: "phone", "email" or "handle"."""
    value = identifier.strip()
    if "@" in value.lstrip("@"):
        return "email"
    if value.startswith("+") or value.replace(" ", "").isdigit():
        return "phone"
    return "handle"


def login_delay_seconds(failures: int, *, delay_after_failures: int) -> int:
    """How long to wait after the latest failure before another attempt: 0, then 1, 2, 4 ... s."""
    if failures < delay_after_failures:
        return 0
    return int(min(DELAY_SECONDS_MAX, 2 ** (failures - delay_after_failures)))


def retry_after_seconds(
    failures: int, last_failure_at: datetime | None, now: datetime, *, delay_after_failures: int
) -> int:
    """Seconds until the next attempt is allowed (0 when it is allowed now)."""
    if last_failure_at is None:
        return 0
    wait = timedelta(
        seconds=login_delay_seconds(failures, delay_after_failures=delay_after_failures)
    )
    remaining = (last_failure_at + wait - now).total_seconds()
    return max(0, int(remaining + 0.999))


def mask_phone(phone: str) -> str:
    """ "+8613800138000" -> "+86 138****8000": enough to recognise, not to dial."""
    parsed = phonenumbers.parse(phone, None)
    national = str(parsed.national_number)
    return f"+{parsed.country_code} {national[:3]}{'*' * max(0, len(national) - 7)}{national[-4:]}"


def mask_email(email: str) -> str:
    """ "wang.wei@example.com" -> "w***i@example.com"."""
    local, _, domain = email.partition("@")
    shown = local[0] + "***" + (local[-1] if len(local) > 1 else "")
    return f"{shown}@{domain}"
