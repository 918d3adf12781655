"""The notification outbox: written in the same transaction as the event it reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime


class OutboxMessage(Base):
    __tablename__ = "notify_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(48))
    locale: Mapped[str] = mapped_column(String(8))
    # Recipient and payload may hold a phone number, an address or a one-time code:
    # encrypted at rest like other personal data.
    recipient_encrypted: Mapped[str] = mapped_column(Text)
    payload_encrypted: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The relay's lease: who holds the message now, and until when. Without a token,
    # ``lease_until`` is the earliest time to try again after a failure.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
    gave_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The event a message reports ("<operation reference>:<template>"), where there is one:
    # at most one message per event and channel, and the ledger check finds events without.
    event_key: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        Index("ix_notify_outbox_pending", "delivered_at", "id"),
        Index("ux_notify_outbox_event", "event_key", "channel", unique=True),
    )
