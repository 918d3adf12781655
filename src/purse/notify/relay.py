"""Sending what the outbox holds: claim a batch under a lease, send, mark each one delivered.

Any number of workers may relay at once. A claim takes only messages nobody
holds (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has a single writer) and
stamps them with a lease token and an expiry (20 s), in one short transaction.
Sending happens outside any transaction, and stops while there is still time for
a send to finish inside the lease. Only the holder of the current lease can mark
a message delivered, one message at a time, right after the channel accepted it.

A worker that dies mid-batch leaves its leases to run out; the next claim sends
those messages again, with the same Message-ID, so a receiver can tell a repeat
from a new message. That is at-least-once delivery: no relay can do better
without a two-phase commit with the mail server. The window is the time between
the mail server's "250 OK" and our commit.

A channel that fails is tried again later, waiting twice as long each time (30 s
up to an hour); after ``outbox_attempts_max`` tries the message is given up and
stays in the outbox with its last error for operators.
"""

from __future__ import annotations

import secrets
import smtplib
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from functools import partial
from typing import Protocol
from urllib.parse import unquote, urlsplit

import structlog
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from purse.crypto import FieldCipher
from purse.db import Database
from purse.models import utc_now
from purse.notify.models import OutboxMessage
from purse.notify.service import Message, read
from purse.notify.texts import Text, render
from purse.prepared import Prepared
from purse.settings import Settings

log = structlog.get_logger(__name__)

RETRY_SECONDS_MIN = 30
RETRY_SECONDS_MAX = 60 * 60


class DeliveryFailed(Exception):
    """The channel did not take the message; try again later."""


class Channel(Protocol):
    """One way out: email over SMTP, an SMS carrier, or the development mailbox."""

    def send(self, message: Message, text: Text) -> None:
        """Hand the message over, or raise (``OSError`` or :class:`DeliveryFailed`)."""
        ...

    def close(self) -> None:
        """The batch is over: release any connection kept for it."""
        ...


class DevMailbox:
    """Nothing leaves this machine: the development mailbox page shows the outbox."""

    def send(self, message: Message, text: Text) -> None:
        return None

    def close(self) -> None:
        return None


class SmtpChannel:
    """Email over SMTP (``smtp://``, ``smtps://`` or ``smtp+starttls://host:port``)."""

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
            raise ValueError("PURSE_SMTP_URL must look like smtp://host:port")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = username or (unquote(parts.username) if parts.username else None)
        self.password = password or (unquote(parts.password) if parts.password else None)
        self.sender = sender
        self.domain = parseaddr(sender)[1].rpartition("@")[2] or "purse.localhost"
        self.timeout_seconds = timeout_seconds
        self._local = threading.local()  # relays may run in several threads of one process

    def message_id(self, message: Message) -> str:
        """Stable per outbox message: a repeat after a crash carries the same id."""
        return f"<outbox-{message.id}@{self.domain}>"

    def send(self, message: Message, text: Text) -> None:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.recipient
        email["Subject"] = text.subject
        email["Message-ID"] = self.message_id(message)
        email["Date"] = formatdate(message.created_at.timestamp(), usegmt=True)
        email.set_content(text.body)  # clears Content-* headers: set them after
        email["Content-Language"] = message.locale
        smtp = self._connection()
        try:
            smtp.send_message(email)
        except (OSError, smtplib.SMTPException):
            self.close()  # a broken or refused session: the next send starts a new one
            raise

    def _connection(self) -> smtplib.SMTP:
        """This thread's open session, kept for the batch: one handshake, many messages."""
        smtp: smtplib.SMTP | None = getattr(self._local, "smtp", None)
        if smtp is None:
            connect = smtplib.SMTP_SSL if self.scheme == "smtps" else smtplib.SMTP
            smtp = connect(self.host, self.port, timeout=self.timeout_seconds)
            try:
                if self.scheme == "smtp+starttls":
                    smtp.starttls()
                if self.username and self.password:
                    smtp.login(self.username, self.password)
            except (OSError, smtplib.SMTPException):
                smtp.close()
                raise
            self._local.smtp = smtp
        return smtp

    def close(self) -> None:
        """End this thread's session (after each batch; the server may drop idle ones)."""
        smtp: smtplib.SMTP | None = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def channels_from(settings: Settings) -> dict[str, Channel]:
    """Email over SMTP when configured; the development mailbox for everything else.

    There is no SMS carrier adapter yet: SMS messages are shown by the mailbox.
    """
    email: Channel = DevMailbox()
    if settings.smtp_url:
        email = SmtpChannel(
            settings.smtp_url,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout_seconds=settings.smtp_timeout_seconds,
        )
    return {"email": email, "sms": DevMailbox()}


def relay_outbox(
    database: Database,
    *,
    cipher: FieldCipher,
    channels: Mapping[str, Channel],
    limit: int | None = None,
    now: datetime | None = None,
) -> int:
    """Send one batch of due messages; returns how many were delivered by this call."""
    settings = database.settings
    token = secrets.token_hex(16)
    claimed = database.run(
        lambda session: claim(
            session,
            cipher=cipher,
            token=token,
            limit=limit or settings.outbox_batch_size,
            lease_seconds=settings.outbox_lease_seconds,
            now=now or utc_now(),
        )
    )
    try:
        return _send_batch(database, claimed, token=token, channels=channels)
    finally:
        for channel in channels.values():
            channel.close()


def _send_batch(
    database: Database, claimed: list[Message], *, token: str, channels: Mapping[str, Channel]
) -> int:
    settings = database.settings
    delivered = 0
    started = time.monotonic()
    # A send (connect, then data) takes at most two timeouts: start none that could
    # still be running when the lease ends, or a second worker could send it too.
    budget = settings.outbox_lease_seconds - 2 * settings.smtp_timeout_seconds
    for position, message in enumerate(claimed):
        if time.monotonic() - started > budget:
            # A slow channel: hand the rest back before the lease can run out under us.
            database.run(
                partial(release, message_ids=[m.id for m in claimed[position:]], token=token)
            )
            break
        channel = channels.get(message.channel)
        try:
            if channel is None:
                raise DeliveryFailed(f"no channel {message.channel!r}")
            channel.send(message, render(message.template, message.locale, message.data))
        except (OSError, DeliveryFailed) as error:
            # The error's type only: an SMTP error may echo the recipient's address.
            reason = type(error).__name__
            database.run(
                partial(
                    failed,
                    message_id=message.id,
                    token=token,
                    reason=reason,
                    attempts_max=settings.outbox_attempts_max,
                    now=utc_now(),
                )
            )
            log.warning("outbox.delivery_failed", message_id=message.id, error_type=reason)
            continue
        if mark_delivered(database, message_id=message.id, token=token):
            delivered += 1
        else:
            log.warning("outbox.lease_lost", message_id=message.id)
    return delivered


def claim(
    session: Session,
    *,
    cipher: FieldCipher,
    token: str,
    limit: int,
    lease_seconds: int,
    now: datetime,
) -> list[Message]:
    """Take up to ``limit`` due messages nobody holds, oldest first, under ``token``."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.gave_up_at.is_(None),
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.lease_token = token
        row.lease_until = now + timedelta(seconds=lease_seconds)
        row.attempts += 1
    return [read(row, cipher=cipher) for row in rows]


# Every payment's two notices are marked one by one (a crash then repeats at most one).
_MARK_DELIVERED = Prepared(
    update(OutboxMessage)
    .where(
        OutboxMessage.id == bindparam("message_id"),
        OutboxMessage.lease_token == bindparam("token"),
    )
    .values(
        delivered_at=bindparam("now", type_=OutboxMessage.delivered_at.type),
        lease_token=None,
        lease_until=None,
        last_error=None,
    )
)


def mark_delivered(database: Database, *, message_id: int, token: str) -> bool:
    """Delivered, if ``token`` still holds the lease (else another worker took it over).

    One statement by itself: autocommit on PostgreSQL, a group commit on SQLite.
    """
    values = {"message_id": message_id, "token": token, "now": utc_now()}
    return database.execute_alone(_MARK_DELIVERED, values) > 0


def release(session: Session, *, message_ids: list[int], token: str) -> None:
    """Give claimed messages back at once, for the next claim to take."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids), OutboxMessage.lease_token == token)
        .values(lease_token=None, lease_until=None, attempts=OutboxMessage.attempts - 1)
    )


def failed(
    session: Session,
    *,
    message_id: int,
    token: str,
    reason: str,
    attempts_max: int,
    now: datetime,
) -> None:
    """Release the lease and say when to try again, or give up after the last attempt."""
    row = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.id == message_id, OutboxMessage.lease_token == token
        )
    ).first()
    if row is None:
        return  # the lease ran out meanwhile; its new holder decides
    row.lease_token = None
    row.last_error = reason[:200]
    row.lease_until = now + timedelta(seconds=retry_seconds(row.attempts))
    if row.attempts >= attempts_max:
        row.gave_up_at = now


def retry_seconds(attempts: int) -> int:
    """30 s after the first failure, doubling, at most an hour."""
    return int(min(RETRY_SECONDS_MAX, RETRY_SECONDS_MIN * 2 ** max(0, min(attempts - 1, 12))))
