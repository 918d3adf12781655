"""What every identity use case needs: the ``Identity`` collaborators, contacts, notices."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy.orm import Session

from purse.crypto import FieldCipher, derive_key
from purse.errors import PurseError
from purse.identity.models import User
from purse.identity.passwords import PasswordHasher, PasswordPolicy
from purse.models import utc_now
from purse.notify.service import enqueue
from purse.settings import Settings

PHONE_CONTEXT = "identity_users.phone"
EMAIL_CONTEXT = "identity_users.email"


class Identity:
    """The collaborators identity use cases need, built once per process from settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # Built on first use: commands that never touch personal data (``purse ledger
    # verify``) must not need, or generate, the secret key.

    @cached_property
    def cipher(self) -> FieldCipher:
        return FieldCipher.from_settings(self.settings)

    @cached_property
    def policy(self) -> PasswordPolicy:
        return PasswordPolicy(self.settings)

    @cached_property
    def hasher(self) -> PasswordHasher:
        return PasswordHasher(self.settings)

    @cached_property
    def _code_key(self) -> bytes:
        return derive_key(self.settings.resolved_secret_key(), "purse one-time codes")

    @cached_property
    def _recovery_key(self) -> bytes:
        return derive_key(self.settings.resolved_secret_key(), "purse recovery codes")

    def code_hash(self, *, user_id: int, purpose: str, code: str) -> str:
        message = f"{user_id}:{purpose}:{code}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    def recovery_hash(self, code: str) -> str:
        normalized = code.strip().lower().replace("-", "").replace(" ", "")
        return hmac.new(self._recovery_key, normalized.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Person:
    """A user as money use cases see them: who they are, their language, how to reach them.

    Read with :func:`purse.identity.users.person` (a few columns, once per transaction),
    not as a whole ``User``: a payment names two people and tells both.
    """

    id: int
    handle: str
    display_name: str
    locale: str
    status: str
    kyc_level: int
    phone_encrypted: str | None
    email_encrypted: str | None


def contact(identity: Identity, user: User | Person, channel: str) -> str | None:
    if channel == "sms" and user.phone_encrypted:
        return identity.cipher.decrypt(user.phone_encrypted, context=PHONE_CONTEXT)
    if channel == "email" and user.email_encrypted:
        return identity.cipher.decrypt(user.email_encrypted, context=EMAIL_CONTEXT)
    return None


def notify_user(
    session: Session,
    *,
    identity: Identity,
    user: User | Person,
    template: str,
    data: dict[str, object] | None = None,
    now: datetime | None = None,
    event_key: str | None = None,
) -> None:
    """Tell the user on every channel they have (security notices go everywhere)."""
    for channel in ("sms", "email"):
        recipient = contact(identity, user, channel)
        if recipient:
            enqueue(
                session,
                cipher=identity.cipher,
                user_id=user.id,
                channel=channel,
                recipient=recipient,
                template=template,
                locale=user.locale,
                data=data or {},
                now=now or utc_now(),
                event_key=event_key,
            )


@dataclass(frozen=True, slots=True)
class Outcome:
    """A use case that counted an attempt: the user it concerns, or the error to raise.

    Security counters must commit even when the attempt fails, so such use cases
    return the error instead of raising it; the entrypoint raises it after the commit.
    """

    user_id: int | None = None
    error: PurseError | None = None
    factors: str = "password"  # what a successful sign-in checked: "password+totp"

    def raise_for_error(self) -> int:
        if self.error is not None:
            raise self.error
        assert self.user_id is not None
        return self.user_id
