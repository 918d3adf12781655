"""How purse is served: the uvicorn configuration, from settings, and slow clients' timeouts.

``server_config`` is the one place the HTTP server is configured: ``purse serve`` and the
live servers of the tests all use it, so the limits they run with are the same.

* Connections: at most ``PURSE_HTTP_CONNECTIONS_MAX`` (uvicorn's ``limit_concurrency``:
  a request beyond it is answered 503 and its connection closed). Below that bound,
  purse's own admission answers overload first, with problem+json and Retry-After
  (``purse.web.limits``).
* Slow clients: uvicorn times out an idle keep-alive connection but nothing else; a
  client that opens a connection and then sends its request head a byte at a time, or
  never, holds it forever. ``TimedH11Protocol`` closes a connection whose request head is
  not complete ``PURSE_HTTP_HEAD_TIMEOUT_SECONDS`` after it opened (or, for the next
  request on a kept-alive connection, after that request's first byte). A body that
  trickles is the body reader's business (408 ``body_too_slow``, ``purse.web.limits``).
* Proxies: uvicorn takes the client's address and scheme from X-Forwarded-For and
  X-Forwarded-Proto only from ``PURSE_FORWARDED_ALLOW_IPS``; the scheme decides HSTS and
  Secure cookies.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import h11
import structlog
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from purse.settings import Settings

log = structlog.get_logger(__name__)

# What a client that was too slow with its request head is told (RFC 9110, 15.5.9).
_HEAD_TIMEOUT_TEXT = b"The request head did not arrive in time.\n"
_HEAD_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_HEAD_TIMEOUT_TEXT), _HEAD_TIMEOUT_TEXT)
)


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration, with what ``TimedH11Protocol`` needs beside it."""

    def __init__(self, app: Any, *, head_timeout_seconds: float, **options: Any) -> None:
        assert head_timeout_seconds > 0
        super().__init__(app, http=TimedH11Protocol, **options)
        self.head_timeout_seconds = head_timeout_seconds


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head.

    Why a subclass of uvicorn's h11 protocol: uvicorn has no setting for it, and takes a
    protocol class (``Config(http=...)``). h11 is the protocol uvicorn uses here anyway
    (httptools is not installed, so "auto" means h11), it is pure Python, and its state
    machine says exactly when a request head is complete: the client's state leaves
    ``IDLE``. The subclass only adds a timer around the parent's ``connection_made``,
    ``data_received`` and ``connection_lost``, and reads ``conn.their_state`` and
    ``conn.trailing_data``; tests/api/test_http_server.py checks it against the pinned
    uvicorn over real sockets, so an upgrade that changes these fails there first.

    A connection that sent nothing gets nothing back and is closed (a browser opening a
    spare connection in advance knows to expect that); one that sent part of a head is
    told 408 first.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, ServerConfig), "TimedH11Protocol is set up by server_config"
        self.head_timeout_seconds = config.head_timeout_seconds
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        connection = transport.get_extra_info("socket")
        if connection is not None and connection.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio turns Nagle's algorithm off only on sockets it can tell are TCP. The
            # listening socket that server processes share (purse serve --workers N) reaches
            # them with protocol 0, and then every answer waited ~40 ms for the client's
            # delayed ACK.
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.head_timer is None and self.conn.their_state is h11.IDLE:
            self._start_head_timer()  # the first byte of the next request on this connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            self._stop_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self.head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        received, _closed = self.conn.trailing_data
        log.info("http.head_too_slow", client=self.client, received_bytes=len(received))
        if received:
            self.transport.write(_HEAD_TIMEOUT_ANSWER)
        self.transport.close()


def server_config(
    app: Any, settings: Settings, *, host: str | None = None, port: int | None = None
) -> ServerConfig:
    """The uvicorn configuration purse is served with: ``purse serve`` and the tests' servers.

    Logging is purse's own (``purse.logs``): uvicorn's is not configured, and its access
    log is off because the request middleware logs every request with its id.
    """
    return ServerConfig(
        app,
        host=host if host is not None else settings.host,
        port=port if port is not None else settings.port,
        head_timeout_seconds=settings.http_head_timeout_seconds,
        limit_concurrency=settings.http_connections_max,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        lifespan="on",
        log_config=None,
        access_log=False,
    )


def settle_heap() -> None:
    """Keep what a server process built at start-up out of the collector's full passes.

    Once the app is built, the heap holds several hundred thousand long-lived objects
    (modules, SQLAlchemy's and pydantic's structures). Python's full collection walks
    all of them, and under load one took over 100 ms, every request in flight waiting
    behind it: most of a send's p99. Freezing them after start-up leaves the full
    passes only what was made since. They are never garbage: they live as long as the
    process. Only for server processes; tests build many apps in one process.
    """
    gc.collect()
    gc.freeze()
