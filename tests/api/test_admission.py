"""Admission: a few requests at once, a short line, and 503 with Retry-After beyond it.

The middleware is driven directly, as the ASGI server drives it, in front of an app
whose requests stay in progress until the test lets them finish. Together with
tests/reliability/test_overload.py, which runs 256 clients against ``purse serve``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from purse.web.limits import AdmissionMiddleware


class HeldApp:
    """Answers 200 once ``release`` is set; counts how many requests it has at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_progress = 0
        self.in_progress_max = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.in_progress += 1
        self.in_progress_max = max(self.in_progress_max, self.in_progress)
        try:
            await self.release.wait()
        finally:
            self.in_progress -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, path: str = "/v1/wallet/balances") -> tuple[int, dict[str, str], float]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
    }
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    started = time.monotonic()
    await app(scope, receive, send)
    start = sent[0]
    headers = {key.decode(): value.decode() for key, value in start["headers"]}
    body = b"".join(message.get("body", b"") for message in sent[1:])
    headers["body"] = body.decode()
    return start["status"], headers, time.monotonic() - started


def test_beyond_the_places_and_the_line_requests_get_503_at_once() -> None:
    async def scenario() -> None:
        held = HeldApp()
        registry = CollectorRegistry()
        app = AdmissionMiddleware(
            held, requests_max=2, queue_max=3, queue_seconds=30, registry=registry
        )
        calls = [asyncio.create_task(call(app)) for _ in range(5)]
        await asyncio.sleep(0.1)
        assert held.in_progress == 2 and app.waiting == 3  # two at work, three in line
        assert registry.get_sample_value("purse_http_requests_waiting") == 3
        assert registry.get_sample_value("purse_http_requests_working") == 2
        status, headers, seconds = await call(app)  # the sixth: no place, no room in line
        # At once, not after the line's 30 s (the bound is loose for a loaded machine).
        assert status == 503 and seconds < 10
        assert headers["retry-after"] == "1"
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(headers["body"])["code"] == "service_overloaded"
        refused = {"reason": "queue_full"}
        assert registry.get_sample_value("purse_http_requests_refused_total", refused) == 1
        held.release.set()
        results = await asyncio.gather(*calls)
        assert [status for status, _, _ in results] == [200] * 5  # the line was served
        assert held.in_progress_max == 2
        assert registry.get_sample_value("purse_http_requests_waiting") == 0
        assert registry.get_sample_value("purse_http_requests_working") == 0

    asyncio.run(scenario())


def test_a_wait_in_line_is_short() -> None:
    async def scenario() -> None:
        held = HeldApp()
        app = AdmissionMiddleware(held, requests_max=1, queue_max=10, queue_seconds=0.2)
        first = asyncio.create_task(call(app))
        await asyncio.sleep(0.05)
        status, headers, seconds = await call(app)
        assert status == 503 and json.loads(headers["body"])["code"] == "service_overloaded"
        assert 0.15 < seconds < 20  # its 0.2 s in line, not until the place is free (never, here)
        assert app.waiting == 0
        held.release.set()
        assert (await first)[0] == 200
        assert (await call(app))[0] == 200  # the place was given back

    asyncio.run(scenario())


def test_health_and_metrics_are_answered_by_a_busy_process() -> None:
    async def scenario() -> None:
        held = HeldApp()
        app = AdmissionMiddleware(held, requests_max=1, queue_max=0, queue_seconds=0)
        busy = asyncio.create_task(call(app))
        await asyncio.sleep(0.05)
        assert (await call(app))[0] == 503
        health = asyncio.create_task(call(app, "/healthz"))
        await asyncio.sleep(0.05)
        assert held.in_progress == 2  # let in beside the busy one
        held.release.set()
        assert (await health)[0] == 200 and (await busy)[0] == 200

    asyncio.run(scenario())
