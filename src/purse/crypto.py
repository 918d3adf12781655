"""Personal data at rest: AES-256-GCM encryption and keyed lookup hashes.

Phone numbers, email addresses, names on funding sources and evidence files
are encrypted at rest, with a keyed hash (HMAC) beside phone
and email so an exact match can be found without decrypting every row.

* Ciphertexts read ``v1.<key id>.<base64 nonce+ciphertext>``. The key id makes
  rotation possible: add a new key, make it current, and old values still
  decrypt with their own key until they are rewritten.
* Each value is bound to its context (for example ``users.email``) as
  associated data, so a ciphertext copied into another column does not decrypt.
* Lookup hashes use a separate key and are computed on a normalised value.

Keys come from ``PURSE_ENCRYPTION_KEYS`` ("id:base64key,..."); without it, one key
is derived from the secret key with HKDF, which is enough for the embedded default.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from purse.settings import Settings

_VERSION = "v1"
_NONCE_BYTES = 12


class DecryptionFailed(Exception):  # noqa: N818 - mirrors cryptography's InvalidTag
    """A ciphertext was altered, moved to another column, or its key is gone."""


def derive_key(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


class FieldCipher:
    def __init__(self, *, keys: dict[str, bytes], current_key_id: str, lookup_key: bytes) -> None:
        if current_key_id not in keys:
            raise ValueError(f"the current encryption key {current_key_id!r} is not among the keys")
        for key_id, key in keys.items():
            if len(key) != 32 or not key_id.isalnum():
                raise ValueError(f"encryption key {key_id!r}: 32 bytes and an alphanumeric id")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current_key_id
        self._lookup_key = lookup_key

    @classmethod
    def from_settings(cls, settings: Settings) -> FieldCipher:
        secret = settings.resolved_secret_key()
        keys = {key_id: base64.b64decode(key) for key_id, key in settings.encryption_keys.items()}
        if not keys:
            keys = {"k0": derive_key(secret, "purse field encryption")}
        current = settings.encryption_key_current or sorted(keys)[-1]
        lookup_key = derive_key(secret, "purse lookup hash")
        return cls(keys=keys, current_key_id=current, lookup_key=lookup_key)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}.{self._current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> str:
        try:
            version, key_id, body = token.split(".", 2)
            raw = base64.urlsafe_b64decode(body)
            if version != _VERSION:
                raise ValueError(version)
            plaintext = self._ciphers[key_id].decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()
            )
        except Exception as error:
            raise DecryptionFailed() from error
        return plaintext.decode()

    def lookup(self, value: str, *, context: str) -> str:
        """A keyed hash of ``value`` for exact-match search (normalise ``value`` first)."""
        message = f"{context}\x00{value}".encode()
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()

    def needs_rotation(self, token: str) -> bool:
        return not token.startswith(f"{_VERSION}.{self._current}.")
