"""Pure identity decisions: normalising contacts and handles, throttling arithmetic."""

from __future__ import annotations

import re
import unicodedata
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


def step_up_needed(
    *,
    action: str,
    actions: list[str],
    authenticated_at: datetime,
    max_age_seconds: int,
    now: datetime,
) -> bool:
    """Whether ``action`` needs the password (and 2FA) confirmed again before it runs.

    The one step-up policy of purse: an action listed in ``PURSE_STEP_UP_ACTIONS``
    runs only if the password was checked (at sign-in or a step-up) within
    ``PURSE_STEP_UP_MAX_AGE_SECONDS``. The API answers 403 ``step_up_required``;
    pages ask for the password and then carry on.
    """
    return action in actions and not confirmed_recently(
        authenticated_at=authenticated_at, max_age_seconds=max_age_seconds, now=now
    )


def confirmed_recently(*, authenticated_at: datetime, max_age_seconds: int, now: datetime) -> bool:
    """Whether the password was checked within the step-up window."""
    return now - authenticated_at <= timedelta(seconds=max_age_seconds)


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
