"""Control characters are refused at the door, in every route's text input, on every database.

A NUL in a note, a bank name or a URL made PostgreSQL refuse the statement (it
cannot store NUL in text) and purse answer 500, "retryable" even. SQLite stored
it. Neither is right: no field of purse takes control characters, so they are
refused before any route runs, with one problem+json answer (422
``text_control_character``) and nothing written, whatever the database.

What is checked: the path, the query string, and the strings (values and keys)
of JSON and form bodies. Bodies may keep tab, line feed and carriage return
(multi-line text such as messages to support); the path and query may not.
Unpaired surrogates (``"\\ud800"`` in JSON) are refused too: they are not text
and no database can store them. Other bodies (files) are left to their routes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from purse.errors import RequestError

_BODY_WHITESPACE = frozenset("\t\n\r")
_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded")


class TextControlCharacter(RequestError):
    code = "text_control_character"
    status = 422
    title = "Control characters in text"
    detail = "Text cannot contain control characters."
    next_step = "Remove invisible characters (such as NUL) from what you typed or sent."


def _bad(char: str, *, allow: frozenset[str]) -> bool:
    code = ord(char)
    if char in allow:
        return False
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def has_control_character(text: str, *, allow: frozenset[str] = frozenset()) -> bool:
    return any(_bad(char, allow=allow) for char in text)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def body_has_control_character(content_type: str, body: bytes) -> bool:
    if content_type.startswith("application/json"):
        try:
            document = json.loads(body)
        except ValueError:
            return False  # not JSON: the route's validation answers that
        return any(
            has_control_character(text, allow=_BODY_WHITESPACE) for text in _strings(document)
        )
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return any(
        has_control_character(text, allow=_BODY_WHITESPACE) for pair in pairs for text in pair
    )


class ControlCharacterGuard:
    """Answers 422 ``text_control_character`` before a route sees such input."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if has_control_character(scope.get("path", "")) or any(
            has_control_character(text)
            for pair in parse_qsl(query, keep_blank_values=True)
            for text in pair
        ):
            await self._refuse(scope, receive, send, "query" if query else "path")
            return
        headers = dict(scope.get("headers", ()))
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if not content_type.startswith(_TEXT_BODIES):
            await self.app(scope, receive, send)
            return
        # Bodies here are small forms and JSON documents, capped in size before this.
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body_has_control_character(content_type, body):
            await self._refuse(scope, receive, send, "body")
            return
        await self.app(scope, _replay([body], None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, where: str) -> None:
        from purse.problems import error_response

        response = error_response(Request(scope), TextControlCharacter(location=where))
        await response(scope, receive, send)


def _replay(bodies: list[bytes], final: Message | None, receive: Receive | None = None) -> Receive:
    """A ``receive`` that gives the app the body already read, then the live connection."""
    pending: list[Message] = [
        {"type": "http.request", "body": body, "more_body": False} for body in bodies
    ]
    if final is not None:
        pending.append(final)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        assert receive is not None
        return await receive()

    return replayed
