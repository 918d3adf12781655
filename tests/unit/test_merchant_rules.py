"""Merchants' pure rules: names, scopes, the shape of a secret key, what each role may do."""

from __future__ import annotations

import pytest

from purse.merchants.rules import (
    KeyMode,
    KeyScope,
    clean_name,
    clean_scopes,
    logo_initial,
    looks_like_secret_key,
    new_secret_key,
    role_allows,
)


def test_names_are_trimmed_normalised_and_bounded() -> None:
    assert clean_name("  Lotus Coffee ", length_max=80).value == "Lotus Coffee"
    assert clean_name("Cafe\u0301", length_max=80).value == "Café"  # NFC
    assert clean_name(" \t ", length_max=80).reason == "empty"
    assert clean_name("x" * 81, length_max=80).reason == "too_long"
    assert clean_name("咖\u202e啡", length_max=80).reason == "control_character"
    assert clean_name("a\nb", length_max=80).reason == "control_character"


def test_a_logo_initial_is_the_first_letter_or_character() -> None:
    assert logo_initial("lotus") == "L"
    assert logo_initial("  #1 Shop") == "1"
    assert logo_initial("莲花咖啡") == "莲"
    assert logo_initial("!!!") == "?"


def test_scopes_are_known_each_once_and_in_a_fixed_order() -> None:
    assert clean_scopes(["read", "payments"]) == (KeyScope.payments, KeyScope.read)
    assert clean_scopes(["payments", "payments"]) is None
    assert clean_scopes([]) is None
    assert clean_scopes(["admin"]) is None


def test_secret_keys_have_their_mode_and_43_random_characters() -> None:
    first, second = new_secret_key(KeyMode.test), new_secret_key(KeyMode.test)
    assert first != second and first.startswith("sk_test_")
    assert new_secret_key(KeyMode.live).startswith("sk_live_")
    assert looks_like_secret_key(first)
    for wrong in (first[:-1], first + "a", first.replace("sk_test_", "sk_prod_"), first + "\n"):
        assert not looks_like_secret_key(wrong)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("owner", {"merchant:read", "payments:manage", "keys:manage", "members:manage"}),
        ("developer", {"merchant:read", "payments:manage", "keys:manage"}),
        ("support", {"merchant:read", "payments:manage"}),
        ("viewer", {"merchant:read"}),
        ("stranger", set()),
    ],
)
def test_each_role_may_do_what_its_row_says(role: str, allowed: set[str]) -> None:
    every = {"merchant:read", "payments:manage", "keys:manage", "members:manage"}
    assert {permission for permission in every if role_allows(role, permission)} == allowed
