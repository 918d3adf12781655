"""Pure checks of card and bank account details, before anything reaches a provider."""

from __future__ import annotations

import re
from datetime import date

from purse.funding.errors import (
    BankAccountInvalid,
    CardExpired,
    CardExpiryInvalid,
    CardNumberInvalid,
)

_SEPARATORS = re.compile(r"[\s-]")
_BRANDS = (  # (prefixes, brand), most specific first
    (("34", "37"), "American Express"),
    (("62",), "UnionPay"),
    (("35",), "JCB"),
    (tuple(str(n) for n in range(51, 56)) + tuple(str(n) for n in range(2221, 2721)), "Mastercard"),
    (("4",), "Visa"),
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def normalize_card_number(number: str) -> str:
    """Digits only; 12 to 19 of them with a valid check digit, or ``card_number_invalid``."""
    digits = _SEPARATORS.sub("", number or "")
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19 and luhn_ok(digits)):
        raise CardNumberInvalid()
    return digits


def card_brand(digits: str) -> str:
    for prefixes, brand in _BRANDS:
        if digits.startswith(prefixes):
            return brand
    return "Card"


def check_expiry(month: int, year: int, *, today: date) -> tuple[int, int]:
    """A four-digit year and a month that has not ended yet."""
    if year < 100:
        year += 2000
    if not (1 <= month <= 12 and 2000 <= year <= 2100):
        raise CardExpiryInvalid()
    if (year, month) < (today.year, today.month):
        raise CardExpired()
    return month, year


def normalize_account_number(number: str) -> str:
    digits = _SEPARATORS.sub("", number or "")
    if not (digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 34):
        raise BankAccountInvalid()
    return digits
