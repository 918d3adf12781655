"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

from __future__ import annotations

import email
import re
import socket
import threading
from collections import Counter
from email.message import EmailMessage
from email.policy import default
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

CODE = re.compile(r"\b(\d{6})\b")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """Start it, point ``PURSE_SMTP_URL`` at :attr:`url`, read :attr:`messages`."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def received(self, to: str | None = None) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if to is None or m["To"] == to]

    def codes(self, to: str) -> list[str]:
        """The one-time codes sent to ``to``, oldest first."""
        found = []
        for message in self.received(to):
            body = message.get_body(("plain",))
            match = CODE.search(body.get_content() if body is not None else "")
            if match:
                found.append(match.group(1))
        return found

    def message_ids(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.received())

    def start(self) -> Inbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Inbox:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
