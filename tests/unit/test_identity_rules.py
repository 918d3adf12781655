"""Identity rules without a database: passwords, contacts, handles, throttling, encryption."""

from __future__ import annotations

import base64

import pytest

from purse.crypto import DecryptionFailed, FieldCipher
from purse.identity import errors, rules
from purse.identity.passwords import PasswordHasher, PasswordPolicy, blocklist
from purse.settings import Settings

SETTINGS = Settings(
    secret_key="s" * 40,
    password_hash_time_cost=1,
    password_hash_memory_cost_kib=8192,
    _env_file=None,
)
POLICY = PasswordPolicy(SETTINGS)


@pytest.mark.parametrize(
    ("password", "error"),
    [
        ("Qz7#kLp", errors.PasswordTooShort),  # 7 characters
        ("x" * 1025, errors.PasswordTooLong),
        ("password123", errors.PasswordBlocklisted),
        ("PASSWORD123", errors.PasswordBlocklisted),  # compared case-folded
        ("woaini1314", errors.PasswordBlocklisted),
        ("aaaaaaaaaa", errors.PasswordTooWeak),
        ("wangwei1988", errors.PasswordTooWeak),  # built from the user's own name
    ],
)
def test_passwords_refused(password: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        POLICY.check(
            password, user_inputs=["wangwei", "Wang Wei", "+8613800138000", "wang.wei@example.com"]
        )


@pytest.mark.parametrize(
    "password",
    [
        "Qz7#kLp9",
        "correct horse battery staple",
        "与月亮同行的猫咪喜欢蓝色雨伞",
        "q" * 1 + "Zr8!" * 16,
        "v9#Lq" * 51 + "x",
    ],
)
def test_passwords_accepted_by_length_not_composition(password: str) -> None:
    POLICY.check(password)


def test_blocklist_is_shipped_and_normalised() -> None:
    words = blocklist()
    assert len(words) > 10_000
    assert all(word == word.casefold() and len(word) >= 8 for word in words)


def test_hashes_are_argon2id_never_truncated_and_nfkc_normalised() -> None:
    hasher = PasswordHasher(SETTINGS)
    long_password = "Lq9#" * 40
    hashed = hasher.hash(long_password)
    assert hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, long_password)
    assert not hasher.verify(hashed, long_password[:-1])  # not truncated
    full_width = hasher.hash("ｐａｓｓ　ｗｏｒｄ　１２３４")  # NFKC: full-width forms fold to ASCII
    assert hasher.verify(full_width, "pass word 1234")
    assert not hasher.verify(None, "anything")  # unknown user: dummy hash, always no
    stronger = PasswordHasher(
        Settings(
            secret_key="s" * 40,
            password_hash_time_cost=2,
            password_hash_memory_cost_kib=8192,
            _env_file=None,
        )
    )
    assert stronger.needs_rehash(hashed) and not hasher.needs_rehash(hashed)


def test_contacts_and_handles() -> None:
    assert rules.normalize_phone("+86 138 0013 8000") == "+8613800138000"
    assert rules.normalize_email(" Wang.Wei@Example.COM ") == "wang.wei@example.com"
    assert rules.normalize_handle("@Wang_Wei") == "wang_wei"
    for bad_phone in ["13800138000", "+86 123", "phone"]:
        with pytest.raises(errors.PhoneInvalid):
            rules.normalize_phone(bad_phone)
    for bad_email in ["wang", "wang@", "@example.com"]:
        with pytest.raises(errors.EmailInvalid):
            rules.normalize_email(bad_email)
    for bad_handle in ["ab", "1abc", "a" * 33, "wang wei", "王伟"]:
        with pytest.raises(errors.HandleInvalid):
            rules.normalize_handle(bad_handle)
    with pytest.raises(errors.DisplayNameInvalid):
        rules.normalize_display_name("   ")
    assert [rules.identifier_kind(v) for v in ["+8613800138000", "a@b.co", "@wang", "wang"]] == [
        "phone",
        "email",
        "handle",
        "handle",
    ]


def test_login_delays_grow_and_are_capped() -> None:
    delays = [rules.login_delay_seconds(n, delay_after_failures=3) for n in range(0, 14)]
    assert delays[:3] == [0, 0, 0]
    assert delays[3:8] == [1, 2, 4, 8, 16]
    assert max(delays) <= rules.DELAY_SECONDS_MAX


def test_field_cipher_binds_context_detects_tampering_and_rotates() -> None:
    old = FieldCipher.from_settings(SETTINGS)
    token = old.encrypt("+8613800138000", context="identity_users.phone")
    assert "8613800138000" not in token
    assert old.decrypt(token, context="identity_users.phone") == "+8613800138000"
    with pytest.raises(DecryptionFailed):
        old.decrypt(token, context="identity_users.email")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionFailed):
        old.decrypt(tampered, context="identity_users.phone")
    k0, k1 = (base64.b64encode(byte * 32).decode() for byte in (b"o", b"n"))
    before = FieldCipher.from_settings(
        Settings(secret_key="s" * 40, encryption_keys=f"k0:{k0}", _env_file=None)
    )
    after = FieldCipher.from_settings(
        Settings(
            secret_key="s" * 40,
            encryption_keys=f"k0:{k0},k1:{k1}",
            encryption_key_current="k1",
            _env_file=None,
        )
    )
    written_before = before.encrypt("wang.wei@example.com", context="c")
    assert after.decrypt(written_before, context="c") == "wang.wei@example.com"
    assert after.needs_rotation(written_before)
    assert after.encrypt("x", context="c").startswith("v1.k1.")
    assert old.lookup("a", context="c") == FieldCipher.from_settings(SETTINGS).lookup(
        "a", context="c"
    )
    assert old.lookup("a", context="c") != old.lookup("a", context="d")
