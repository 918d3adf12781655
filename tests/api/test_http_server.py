"""purse served as ``purse serve`` serves it, over real sockets on 127.0.0.1: slow clients.

Each test starts a live server (``tests/live_server.py``, configured by
``purse.server.server_config``) with short timeouts, and talks to it byte by byte.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from typing import Any

import httpx
import pytest

from factories import make_settings
from live_server import LiveServer
from purse.db import Database

HEAD_TIMEOUT_SECONDS = 0.5
BODY_TIMEOUT_SECONDS = 0.5
# How long a test waits for the server to act on a timeout before calling it a failure.
PATIENCE_SECONDS = 10.0

Serve = Callable[..., LiveServer]


@pytest.fixture
def serve(sqlite_url: str) -> Iterator[Serve]:
    with ExitStack() as stack:

        def start(**overrides: object) -> LiveServer:
            timeouts = {
                "http_head_timeout_seconds": HEAD_TIMEOUT_SECONDS,
                "http_body_timeout_seconds": BODY_TIMEOUT_SECONDS,
            }
            settings = make_settings(sqlite_url, **{**timeouts, **overrides})
            database = Database(settings)
            stack.callback(database.dispose)
            return stack.enter_context(LiveServer(database))

        yield start


def connect(server: LiveServer) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE_SECONDS)
    return connection


def read_until_closed(connection: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    for _ in range(1000):
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open after {PATIENCE_SECONDS} s: {received!r}") from None
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed(serve: Serve) -> None:
    server = serve()
    with closing(connect(server)) as connection:
        received, seconds = read_until_closed(connection)
    assert received == b""  # nothing was asked, nothing is answered
    assert HEAD_TIMEOUT_SECONDS * 0.8 <= seconds < PATIENCE_SECONDS


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(serve: Serve) -> None:
    server = serve()
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 200
    with closing(connect(server)) as connection:
        started = time.monotonic()
        sent = 0
        for byte in head:  # a byte every 50 ms: each arrives well within any idle timeout
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            time.sleep(0.05)
            if time.monotonic() - started > PATIENCE_SECONDS:
                break
        received, _ = read_until_closed(connection)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert b"connection: close" in received.lower()
    # Cut off at the deadline of the whole head, not after the client's last byte.
    assert sent < len(head) and sent * 0.05 < HEAD_TIMEOUT_SECONDS * 4


def test_the_next_request_on_a_kept_connection_has_a_deadline_too(serve: Serve) -> None:
    server = serve()
    with closing(connect(server)) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        for _ in range(100):  # until the whole first answer is in
            first += connection.recv(65536)
            if first.endswith(b'{"status":"ok"}'):
                break
        assert first.startswith(b"HTTP/1.1 200 "), first
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no end
        received, seconds = read_until_closed(connection)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert seconds < PATIENCE_SECONDS


def test_a_complete_request_is_not_cut_off(serve: Serve) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, timeout=PATIENCE_SECONDS) as client:
        for _ in range(3):  # the same kept-alive connection, with pauses past the head deadline
            assert client.get("/healthz").status_code == 200
            time.sleep(HEAD_TIMEOUT_SECONDS * 1.5)


def test_a_body_that_trickles_gets_408(serve: Serve) -> None:
    server = serve()
    head = (
        b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with closing(connect(server)) as connection:
        connection.sendall(head + b'{"identifier": ')
        received, seconds = read_until_closed(connection)
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408 "), received
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    assert json.loads(body)["code"] == "body_too_slow"
    assert seconds < PATIENCE_SECONDS


def test_a_body_declared_too_large_is_refused_before_it_is_sent(serve: Serve) -> None:
    server = serve()
    with closing(connect(server)) as connection:
        connection.sendall(
            b"POST /v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        )
        received, _ = read_until_closed(connection)
    assert received.startswith(b"HTTP/1.1 413 "), received
    assert json.loads(received.partition(b"\r\n\r\n")[2])["code"] == "body_too_large"
    # A client that sends the large body anyway still reads the answer.
    with httpx.Client(base_url=server.url, timeout=PATIENCE_SECONDS) as client:
        response = client.post("/v1/auth/token", content=b"x" * 1_000_000)
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"


def test_connections_beyond_the_limit_are_answered_503(serve: Serve) -> None:
    server = serve(http_connections_max=2, http_head_timeout_seconds=PATIENCE_SECONDS)
    with httpx.Client(base_url=server.url, timeout=PATIENCE_SECONDS) as client:
        assert client.get("/healthz").status_code == 200
    with closing(connect(server)), closing(connect(server)):
        time.sleep(0.2)  # both accepted: they hold the two connections allowed
        with httpx.Client(base_url=server.url, timeout=PATIENCE_SECONDS) as client:
            refused = client.get("/healthz")
    assert refused.status_code == 503
    assert refused.headers["connection"] == "close"


def test_https_is_believed_only_from_the_trusted_proxy(serve: Serve) -> None:
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    trusted = serve()  # PURSE_FORWARDED_ALLOW_IPS: 127.0.0.1, where the test connects from
    with httpx.Client(base_url=trusted.url, timeout=PATIENCE_SECONDS) as client:
        assert "strict-transport-security" in client.get("/healthz", headers=proxied).headers
        assert "strict-transport-security" not in client.get("/healthz").headers
    untrusted = serve(forwarded_allow_ips="192.0.2.1")
    with httpx.Client(base_url=untrusted.url, timeout=PATIENCE_SECONDS) as client:
        assert "strict-transport-security" not in client.get("/healthz", headers=proxied).headers


def test_answers_go_out_at_once_on_a_listening_socket_handed_to_server_processes(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``purse serve --workers N`` binds one socket for its processes (``bind_socket``), and
    it reaches them with protocol 0. asyncio turns Nagle's algorithm off only on sockets it
    can tell are TCP, so every answer there waited ~40 ms for the client's delayed ACK.
    purse turns it off itself; this checks the accepted socket, not a time."""
    import threading

    import uvicorn

    from purse.server import TimedH11Protocol, server_config

    nodelay: list[int] = []
    made = TimedH11Protocol.connection_made

    def recording(self: TimedH11Protocol, transport: Any) -> None:
        made(self, transport)
        connection = transport.get_extra_info("socket")
        nodelay.append(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(TimedH11Protocol, "connection_made", recording)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = server_config(app, make_settings(sqlite_url), host="127.0.0.1", port=0)
    handed = config.bind_socket()
    assert handed.proto == 0  # as the processes of purse serve --workers N receive it
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [handed]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        port = handed.getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/").status_code == 204
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE_SECONDS)
        handed.close()
    assert nodelay and all(nodelay), nodelay
