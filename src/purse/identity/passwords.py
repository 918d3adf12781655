"""Passwords: argon2id hashes and the NIST SP 800-63B policy.

* Length only, no composition rules: at least 8 characters (15 suggested),
  up to ``password_length_max`` (1024 by default, far above the 64 NIST asks us
  to allow, and bounded so hashing stays cheap). Counted in Unicode characters
  after NFKC normalisation, and never truncated.
* Refused when on the shipped blocklist of common and leaked passwords, or when
  zxcvbn estimates it too easy to guess, with the user's own name, handle,
  phone and email given to zxcvbn so passwords built from them score low.
* argon2id with parameters from settings; a hash made with older parameters is
  replaced at the next successful login (``needs_rehash``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from purse.identity.errors import (
    PasswordBlocklisted,
    PasswordTooLong,
    PasswordTooShort,
    PasswordTooWeak,
)
from purse.settings import Settings


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@cache
def blocklist() -> frozenset[str]:
    text = (resources.files("purse.identity") / "data" / "common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


class PasswordPolicy:
    def __init__(self, settings: Settings) -> None:
        self.length_min = settings.password_length_min
        self.length_max = settings.password_length_max
        self.score_min = settings.password_strength_score_min

    def check(self, password: str, *, user_inputs: Iterable[str] = ()) -> None:
        """Raise the first rule ``password`` breaks; return quietly if it is acceptable."""
        normalized = normalize(password)
        if len(normalized) < self.length_min:
            raise PasswordTooShort(length_min=self.length_min)
        if len(normalized) > self.length_max:
            raise PasswordTooLong(length_max=self.length_max)
        if normalized.casefold() in blocklist():
            raise PasswordBlocklisted()
        # zxcvbn's cost grows with length; past 100 characters a password is strong enough.
        if len(normalized) <= 100:
            inputs = [part for value in user_inputs if value for part in _input_parts(value)]
            result = zxcvbn(normalized, user_inputs=inputs)
            if int(result["score"]) < self.score_min:
                raise PasswordTooWeak(hint=str(result["feedback"].get("warning") or ""))


def _input_parts(value: str) -> list[str]:
    """A detail whole, joined and in pieces: "Wang Wei" -> wang wei, wangwei, wang, wei."""
    pieces = [value.casefold(), "".join(char for char in value.casefold() if char.isalnum())]
    token = ""
    for char in value.casefold():
        if char.isalnum():
            token += char
        else:
            if len(token) >= 3:
                pieces.append(token)
            token = ""
    if len(token) >= 3:
        pieces.append(token)
    return pieces


class PasswordHasher:
    def __init__(self, settings: Settings) -> None:
        self._hasher = Argon2Hasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_cost_kib,
            parallelism=settings.password_hash_parallelism,
            type=Type.ID,
        )
        # Checked when the user does not exist, so the answer takes as long either way.
        self._dummy_hash = self._hasher.hash("purse dummy password for unknown users")

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalize(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with no hash, spends the same time and says no."""
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, normalize(password)) and (
                password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
