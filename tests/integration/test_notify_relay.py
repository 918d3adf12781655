"""The outbox relay against a real SMTP server (aiosmtpd on 127.0.0.1), on both databases."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from factories import make_settings
from purse.db import Database
from purse.identity.context import Identity
from purse.models import utc_now
from purse.notify import relay
from purse.notify.models import OutboxMessage
from purse.notify.service import Message, enqueue
from smtp_support import Inbox, free_port


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with Inbox() as running:
        yield running


def queue(database: Database, identity: Identity, count: int = 1, **changes: object) -> list[int]:
    values: dict[str, object] = {
        "user_id": 1,
        "channel": "email",
        "recipient": "wang.wei@example.com",
        "template": "code_reset_password",
        "locale": "en",
        "data": {"code": "482913", "minutes": 10},
    }
    values.update(changes)
    return database.run(
        lambda session: [
            enqueue(session, cipher=identity.cipher, **values)  # type: ignore[arg-type]
            for _ in range(count)
        ]
    )


def rows(database: Database) -> list[OutboxMessage]:
    def read(session: object) -> list[OutboxMessage]:
        found = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))  # type: ignore[attr-defined]
        session.expunge_all()  # type: ignore[attr-defined]
        return found

    return database.run(read, write=False)


def smtp(inbox: Inbox) -> dict[str, relay.Channel]:
    return {
        "email": relay.SmtpChannel(inbox.url, sender="purse <no-reply@purse.test>"),
        "sms": relay.DevMailbox(),
    }


def test_email_goes_out_once_with_its_text_and_a_stable_message_id(
    database: Database, inbox: Inbox
) -> None:
    identity = Identity(database.settings)
    queue(database, identity)
    queue(database, identity, locale="zh-CN", recipient="li.na@example.com")
    queue(database, identity, channel="sms", recipient="+8613800138000")

    sent = relay.relay_outbox(database, cipher=identity.cipher, channels=smtp(inbox))
    assert sent == 3
    assert relay.relay_outbox(database, cipher=identity.cipher, channels=smtp(inbox)) == 0

    english, chinese = inbox.received("wang.wei@example.com"), inbox.received("li.na@example.com")
    assert len(inbox.received()) == 2  # the SMS went to the mailbox channel, not to SMTP
    assert english[0]["Subject"] == "Your purse code is 482913."
    assert english[0]["From"] == "purse <no-reply@purse.test>"
    assert inbox.codes("wang.wei@example.com") == ["482913"]
    assert "10 minutes" in english[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert chinese[0]["Subject"].startswith("你的 purse 验证码是 482913")
    assert chinese[0]["Content-Language"] == "zh-CN"
    ids = [row.id for row in rows(database)]
    assert english[0]["Message-ID"] == f"<outbox-{ids[0]}@purse.test>"
    assert all(row.delivered_at is not None and row.lease_token is None for row in rows(database))


def test_a_device_is_worded_when_the_message_is_sent_in_its_recipients_language(
    database: Database, inbox: Inbox
) -> None:
    """The outbox keeps the device's names; the relay words them for each recipient."""
    identity = Identity(database.settings)
    device = {"device": '["Chrome Mobile", "Android", "Pixel 8"]', "address": "203.0.113.9"}
    queue(database, identity, template="new_device_sign_in", data=device)
    queue(
        database,
        identity,
        template="new_device_sign_in",
        data=device,
        locale="zh-CN",
        recipient="li.na@example.com",
    )
    assert relay.relay_outbox(database, cipher=identity.cipher, channels=smtp(inbox)) == 2
    english, chinese = inbox.received("wang.wei@example.com"), inbox.received("li.na@example.com")
    assert english[0]["Subject"] == "New sign-in to purse from Chrome Mobile on Android (Pixel 8)."
    assert (
        chinese[0]["Subject"]
        == "你的 purse 账户有新的登录，设备：Android 上的 Chrome Mobile（Pixel 8）。"
    )


def test_a_batch_shares_one_smtp_session_and_a_broken_one_is_replaced(
    database: Database, inbox: Inbox
) -> None:
    identity = Identity(database.settings)
    queue(database, identity, count=3)
    channel = relay.SmtpChannel(inbox.url, sender="purse <no-reply@purse.test>")
    sessions: list[object] = []
    opened = channel._connection

    def counting() -> smtplib.SMTP:
        smtp = opened()
        if not sessions or sessions[-1] is not smtp:
            sessions.append(smtp)
        return smtp

    channel._connection = counting  # type: ignore[method-assign]  # counting the real thing
    assert relay.relay_outbox(database, cipher=identity.cipher, channels={"email": channel}) == 3
    assert len(sessions) == 1 and len(inbox.received()) == 3
    assert getattr(channel._local, "smtp", None) is None  # closed after the batch


def test_a_mail_server_that_is_down_is_tried_later_then_given_up(database: Database) -> None:
    identity = Identity(database.settings)
    queue(database, identity)
    nobody = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    channels: dict[str, relay.Channel] = {
        "email": relay.SmtpChannel(nobody, sender="purse <no-reply@purse.test>")
    }
    now = utc_now()

    assert relay.relay_outbox(database, cipher=identity.cipher, channels=channels, now=now) == 0
    [row] = rows(database)
    assert row.delivered_at is None and row.attempts == 1
    assert row.last_error == "ConnectionRefusedError"  # the type only: no address in it
    assert row.lease_token is None and row.lease_until is not None
    assert row.lease_until - now >= timedelta(seconds=29)  # not again at once
    # Not due yet: nothing is claimed.
    assert relay.relay_outbox(database, cipher=identity.cipher, channels=channels, now=now) == 0
    assert rows(database)[0].attempts == 1

    later = now
    for _ in range(database.settings.outbox_attempts_max):
        later += timedelta(hours=2)
        relay.relay_outbox(database, cipher=identity.cipher, channels=channels, now=later)
    [row] = rows(database)
    assert row.attempts == database.settings.outbox_attempts_max
    assert row.gave_up_at is not None and row.delivered_at is None


def test_a_held_lease_keeps_other_relays_off_until_it_runs_out(
    database: Database, inbox: Inbox
) -> None:
    identity = Identity(database.settings)
    [message_id] = queue(database, identity)
    now = utc_now()
    # A worker claimed the message and died before sending it.
    database.run(
        lambda session: relay.claim(
            session,
            cipher=identity.cipher,
            token="dead-worker",
            limit=10,
            lease_seconds=60,
            now=now,
        )
    )
    channels = smtp(inbox)
    assert relay.relay_outbox(database, cipher=identity.cipher, channels=channels, now=now) == 0
    assert inbox.received() == []
    later = now + timedelta(seconds=61)
    assert relay.relay_outbox(database, cipher=identity.cipher, channels=channels, now=later) == 1
    assert len(inbox.received()) == 1
    # The dead worker's lease is gone: it can no longer mark the message.
    assert not relay.mark_delivered(database, message_id=message_id, token="dead-worker")
    assert rows(database)[0].attempts == 2


def test_concurrent_relays_share_a_backlog_without_sending_twice(
    database: Database, inbox: Inbox
) -> None:
    identity = Identity(database.settings)
    queue(database, identity, count=60)
    channels = smtp(inbox)
    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(
            pool.map(
                lambda _: relay.relay_outbox(
                    database, cipher=identity.cipher, channels=channels, limit=10
                ),
                range(12),
            )
        )
    assert sum(counts) == 60
    assert len(inbox.received()) == 60
    assert max(inbox.message_ids().values()) == 1


def test_a_bad_smtp_url_is_a_settings_error(database: Database) -> None:
    with pytest.raises(ValidationError, match="smtp://host:port"):
        make_settings(database.settings.database_url, smtp_url="http://mail.example.com")
    with pytest.raises(ValidationError, match="more than twice"):
        make_settings(
            database.settings.database_url, outbox_lease_seconds=10, smtp_timeout_seconds=5
        )
    assert make_settings(database.settings.database_url, smtp_url="").smtp_url is None


def test_a_slow_channel_hands_the_rest_of_its_batch_back(database: Database, inbox: Inbox) -> None:
    """Once a send might outlast its lease, a relay stops and releases what it has not sent."""
    identity = Identity(database.settings)
    queue(database, identity, count=5)
    settings = make_settings(
        database.settings.database_url, outbox_lease_seconds=2, smtp_timeout_seconds=0.5
    )
    slow_database = Database(settings)
    sent: list[int] = []

    class Slow:
        def send(self, message: Message, text: object) -> None:
            time.sleep(1.1)  # past the 2 - 2 x 0.5 = 1 s it may start sends in
            sent.append(message.id)

        def close(self) -> None:
            return None

    try:
        delivered = relay.relay_outbox(
            slow_database, cipher=identity.cipher, channels={"email": Slow()}
        )
    finally:
        slow_database.dispose()
    assert delivered == len(sent) == 1
    left = [row for row in rows(database) if row.delivered_at is None]
    assert len(left) == 4
    assert all(row.lease_token is None and row.lease_until is None for row in left)
    assert all(row.attempts == 0 for row in left)  # handed back, not counted as a try
    assert relay.relay_outbox(database, cipher=identity.cipher, channels=smtp(inbox)) == 4
