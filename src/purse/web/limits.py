"""What one request may take from a purse process: a bounded body, sent in time, and a place.

Two pure ASGI middlewares, in front of every route (``purse.app`` puts them in order):

* :class:`BodyLimitMiddleware` reads the whole request body before the route runs: at
  most ``PURSE_HTTP_BODY_BYTES_MAX``, or less under a path that takes less (the assembly's
  ``body_caps``), within ``PURSE_HTTP_BODY_TIMEOUT_SECONDS``. A body declared
  larger by its Content-Length is refused with 413 before a byte of it is read; a chunked
  one as soon as it passes the cap; one that trickles in too slowly gets 408. A route gets
  its body in one piece or not at all, so nothing is half read, and no answer is half
  written because a body turned out too big once the route had begun. A slow body holds
  no place among the requests being worked on: it is read before the next middleware.
* :class:`AdmissionMiddleware` lets at most ``PURSE_HTTP_REQUESTS_MAX`` requests be worked
  on at once. Up to ``PURSE_HTTP_QUEUE_MAX`` more wait in line, each for at most
  ``PURSE_HTTP_QUEUE_SECONDS``; the rest, and those whose wait runs out, are answered 503
  ``service_overloaded`` with ``Retry-After`` at once.

Why admission: without it, overload turned into timeouts rather than answers. Routes run
on the 40 threads of the thread pool, each needs one of the database pool's connections
and, on SQLite, its turn to write; all three are queues in which a request waits as long
as it takes (30 s for a connection, 30 s for the SQLite writers' lock, unbounded for a
thread). With 256 clients giving up after 2 s, 95 % of calls timed out and not one
transfer was acknowledged, while the server went on to finish over a thousand transfers,
5 to 6 s after they were sent, for clients that had gone, and whose retries queued behind
them. Bounding the work in progress keeps each admitted request fast, and what cannot be
admitted is told so, quickly, in a way a client can act on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from purse.errors import BodyTooLarge, BodyTooSlow, PurseError, ServiceOverloaded
from purse.problems import error_response

log = structlog.get_logger(__name__)

# Answered outside the line: a liveness probe must not fail because the process is busy,
# and an operator must be able to see that it is (metrics).
ADMISSION_EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})


class BodyLimitMiddleware:
    """Reads each request body whole before the route runs: bounded in bytes and in time.

    Why not FastAPI's own ``max_body_size``: it answers a Content-Length over the limit with
    text/plain and a chunked body over it with problem+json (through the handlers), it has
    no time bound, and it counts while the route reads, that is after the request took a
    place among those being worked on. Caps per path prefix, rather than per route, because
    FastAPI matches nested routers lazily: which route will answer is not known out here.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        bytes_max: int,
        timeout_seconds: float,
        caps: Mapping[str, int] | None = None,
    ) -> None:
        assert bytes_max > 0 and timeout_seconds > 0
        self.app = app
        self.bytes_max = bytes_max
        self.timeout_seconds = timeout_seconds
        self.caps = {prefix: min(cap, bytes_max) for prefix, cap in (caps or {}).items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (RFC 9112, 6.3)
            return
        bytes_max = self.bytes_max_of(scope)
        if length is not None and (not length.isdigit() or int(length) > bytes_max):
            await _answer(scope, receive, send, BodyTooLarge(bytes_max=bytes_max))
            return
        try:
            body = await self.read_body(receive, bytes_max)
        except PurseError as error:
            await _answer(scope, receive, send, error)
            return
        if body is None:
            return  # the client left: nobody to answer
        delivered = False

        async def receive_whole() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # only a disconnect is left to come
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, receive_whole, send)

    async def read_body(self, receive: Receive, bytes_max: int) -> bytes | None:
        """The whole body, or None if the client left; BodyTooLarge, BodyTooSlow otherwise."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_seconds):
                more_body = True
                while more_body:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > bytes_max:
                        raise BodyTooLarge(bytes_max=bytes_max)
                    chunks.append(chunk)
                    more_body = message.get("more_body", False)
        except TimeoutError:
            log.info("http.body_too_slow", received_bytes=size)
            raise BodyTooSlow() from None
        return b"".join(chunks)

    def bytes_max_of(self, scope: Scope) -> int:
        """The cap of the request's path: the smallest of the prefixes it is under."""
        path: str = scope["path"]
        return min(
            (cap for prefix, cap in self.caps.items() if path.startswith(prefix)),
            default=self.bytes_max,
        )


class AdmissionMiddleware:
    """At most ``requests_max`` requests at once; a short line; 503 with Retry-After beyond it.

    The line is first come, first served (asyncio's semaphore wakes waiters in order), and
    a place is held only while the route runs: the body was read before (see the module).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        requests_max: int,
        queue_max: int,
        queue_seconds: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        assert requests_max > 0 and queue_max >= 0 and queue_seconds >= 0
        self.app = app
        self.requests_max = requests_max
        self.queue_max = queue_max
        self.queue_seconds = queue_seconds
        self.waiting = 0
        self.working = 0
        registry = registry if registry is not None else CollectorRegistry()
        Gauge(
            "purse_http_requests_waiting",
            "Requests in line for a place (at most PURSE_HTTP_QUEUE_MAX)",
            registry=registry,
        ).set_function(lambda: self.waiting)
        Gauge(
            "purse_http_requests_working",
            "Requests being worked on (at most PURSE_HTTP_REQUESTS_MAX)",
            registry=registry,
        ).set_function(lambda: self.working)
        self.refused = Counter(
            "purse_http_requests_refused",
            "Requests answered 503 service_overloaded, by reason (queue_full, queue_wait)",
            ["reason"],
            registry=registry,
        )
        # Made in the event loop that serves the requests (asyncio's primitives belong to one).
        self._places: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ADMISSION_EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        places = self.places()
        if places.locked() and self.waiting >= self.queue_max:
            await self.refuse(scope, receive, send, reason="queue_full")
            return
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_seconds):
                await places.acquire()
        except TimeoutError:
            await self.refuse(scope, receive, send, reason="queue_wait")
            return
        finally:
            self.waiting -= 1
        self.working += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.working -= 1
            places.release()

    def places(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._places is None or self._loop is not loop:
            # A server has one loop; only tests run an app in several loops, one at a time.
            self._places, self._loop = asyncio.Semaphore(self.requests_max), loop
        return self._places

    async def refuse(self, scope: Scope, receive: Receive, send: Send, *, reason: str) -> None:
        log.info("http.overloaded", reason=reason, waiting=self.waiting)
        self.refused.labels(reason=reason).inc()
        await _answer(scope, receive, send, ServiceOverloaded())


async def _answer(scope: Scope, receive: Receive, send: Send, error: PurseError) -> None:
    response = error_response(Request(scope), error)
    await response(scope, receive, send)
