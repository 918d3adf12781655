"""A merchant's webhook receiver on 127.0.0.1, as a merchant would write one.

It verifies every request with the ``standardwebhooks`` library (signature and a 5-minute
timestamp tolerance), refuses a message id it has already handled (answering 200 without
handling it again, as the specification advises), and answers with the status codes it
is told to, in turn.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: dict[str, Any] | None
    duplicate: bool


@dataclass
class Receiver:
    secret: str = ""
    answers: list[int] = field(default_factory=list)  # status codes, in turn; then 200
    received: list[Received] = field(default_factory=list)
    handled_ids: set[str] = field(default_factory=set)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            verified: dict[str, Any] | None
            try:
                verified = Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError:
                verified = None
            message_id = headers.get("webhook-id", "")
            duplicate = verified is not None and message_id in self.handled_ids
            self.received.append(Received(dict(headers), body, verified, duplicate))
            if verified is None:
                return 400
            status = self.answers.pop(0) if self.answers else 200
            if 200 <= status < 300 and not duplicate:
                self.handled_ids.add(message_id)
            return status

    @property
    def events(self) -> list[dict[str, Any]]:
        """What was handled, once each: the verified, non-duplicate bodies."""
        return [r.verified for r in self.received if r.verified is not None and not r.duplicate]


@contextmanager
def receiver(secret: str = "", path: str = "/purse/webhooks") -> Iterator[Receiver]:
    found = Receiver(secret=secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {key.lower(): value for key, value in self.headers.items()}
            status = found.handle(headers, body)
            answer = json.dumps({"ok": 200 <= status < 300}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
