"""Structured JSON logs (structlog) with the request id bound to every line.

Nothing secret is ever passed to a logger; as a second line of defence, values
under keys that name secrets are masked before rendering.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_WORDS = (
    "password",
    "secret",
    "token",
    "authorization",
    "cookie",
    "otp",
    "api_key",
    "recovery",
)


def _mask_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for field in list(event):
        if any(word in field.lower() for word in _SECRET_WORDS):
            event[field] = "[masked]"
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (it may be swapped, e.g. by test capture)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr, one event per line, with timestamp, level and context."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(format="%(message)s", stream=_CurrentStderr(), level=numeric, force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
