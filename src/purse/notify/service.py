"""Writing to the outbox, and reading it back for the development mailbox.

The relay (:mod:`purse.notify.relay`) sends what is written here; delivered
messages stay in the outbox, so the development mailbox can show them and tests
can read them through :func:`mailbox`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from purse.crypto import FieldCipher
from purse.models import utc_now
from purse.notify.models import OutboxMessage
from purse.prepared import Prepared

_RECIPIENT = "notify_outbox.recipient"
_PAYLOAD = "notify_outbox.payload"
# Built once: a statement made per call costs more than the INSERT itself.
_INSERT = Prepared(
    insert(cast(Table, OutboxMessage.__table__)).returning(OutboxMessage.__table__.c.id)
)


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    user_id: int | None
    channel: str
    recipient: str
    template: str
    locale: str
    data: dict[str, Any]
    created_at: datetime


def enqueue(
    session: Session,
    *,
    cipher: FieldCipher,
    user_id: int | None,
    channel: str,
    recipient: str,
    template: str,
    locale: str,
    data: dict[str, Any],
    now: datetime | None = None,
    event_key: str | None = None,
) -> int:
    """Queue one message in the caller's transaction; it is sent only if that commits.

    ``event_key`` names the event the message reports; a second message for the
    same event and channel is refused by the database.
    """
    assert session.in_transaction()
    # One Core INSERT, not an ORM object and a flush: every payment writes two of these.
    message_id: int = _INSERT.scalar(
        session,
        {
            "user_id": user_id,
            "channel": channel,
            "template": template,
            "locale": locale,
            "recipient_encrypted": cipher.encrypt(recipient, context=_RECIPIENT),
            "payload_encrypted": cipher.encrypt(json.dumps(data, sort_keys=True), context=_PAYLOAD),
            "attempts": 0,
            "created_at": now or utc_now(),
            "event_key": event_key,
        },
    )
    return message_id


def mailbox(
    session: Session, *, cipher: FieldCipher, recipient: str | None = None, limit: int = 50
) -> list[Message]:
    """The newest messages, decrypted (optionally only those to ``recipient``)."""
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit))
    messages = [read(row, cipher=cipher) for row in rows]
    return [m for m in messages if recipient is None or m.recipient == recipient]


def read(row: OutboxMessage, *, cipher: FieldCipher) -> Message:
    """One outbox row, decrypted."""
    return Message(
        id=row.id,
        user_id=row.user_id,
        channel=row.channel,
        recipient=cipher.decrypt(row.recipient_encrypted, context=_RECIPIENT),
        template=row.template,
        locale=row.locale,
        data=json.loads(cipher.decrypt(row.payload_encrypted, context=_PAYLOAD)),
        created_at=row.created_at,
    )
