"""The notifications' background job: relaying the outbox to email and SMS."""

from __future__ import annotations

from collections.abc import Mapping

from purse.crypto import FieldCipher
from purse.jobs import Job, Lane
from purse.notify import relay


def jobs(*, cipher: FieldCipher, channels: Mapping[str, relay.Channel]) -> list[Job]:
    return [
        Job(
            "relay_outbox",
            lambda database: relay.relay_outbox(database, cipher=cipher, channels=channels),
            Lane.outbox,
        )
    ]
