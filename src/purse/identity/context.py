"""What every identity use case needs: the ``Identity`` collaborators, contacts, notices."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from functools import cached_property

from sqlalchemy.orm import Session

from purse.crypto import FieldCipher, derive_key
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
        self.cipher = FieldCipher.from_settings(settings)
        self.policy = PasswordPolicy(settings)
        self._code_key = derive_key(settings.resolved_secret_key(), "purse one-time codes")
        self._recovery_key = derive_key(settings.resolved_secret_key(), "purse recovery codes")

    @cached_property
    def hasher(self) -> PasswordHasher:
        return PasswordHasher(self.settings)

    def code_hash(self, *, user_id: int, purpose: str, code: str) -> str:
        message = f"{user_id}:{purpose}:{code}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    def recovery_hash(self, code: str) -> str:
        normalized = code.strip().lower().replace("-", "").replace(" ", "")
        return hmac.new(self._recovery_key, normalized.encode(), hashlib.sha256).hexdigest()


def contact(identity: Identity, user: User, channel: str) -> str | None:
    if channel == "sms" and user.phone_encrypted:
        return identity.cipher.decrypt(user.phone_encrypted, context=PHONE_CONTEXT)
    if channel == "email" and user.email_encrypted:
        return identity.cipher.decrypt(user.email_encrypted, context=EMAIL_CONTEXT)
    return None


def notify_user(
    session: Session,
    *,
    identity: Identity,
    user: User,
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
