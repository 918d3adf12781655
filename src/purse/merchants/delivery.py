"""Sending webhooks: the signed request, the address guard, and the worker's job.

Each request is signed as the Standard Webhooks specification says, by its reference
library (``standardwebhooks``): ``webhook-id`` (the event's message id, the same on every
retry), ``webhook-timestamp`` (when this attempt was sent) and ``webhook-signature``
(``v1,`` and the HMAC-SHA256 of id, timestamp and body; during a secret rotation, one
signature per secret, space-separated).

**No SSRF.** purse calls the merchant's URL from inside the operator's network, so in
production (``PURSE_MERCHANT_WEBHOOK_PRIVATE_ADDRESSES`` unset or false) a URL whose host
resolves to a loopback, private, link-local, multicast or reserved address is refused
when the endpoint is registered and again before every attempt (a name may be pointed
elsewhere later). Redirects are not followed. The answer is read only up to a bound.

The job claims due deliveries in one short transaction, calls each endpoint outside any
transaction, and records each outcome in a transaction of its own.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from purse.db import Database
from purse.identity.context import Identity
from purse.merchants import errors, webhooks
from purse.merchants.rules import WEBHOOK_RESPONSE_EXCERPT_MAX, address_problem
from purse.merchants.webhooks import Claim, Outcome
from purse.models import utc_now
from purse.settings import Settings

Resolver = Callable[[str, int], list[str]]

USER_AGENT = "purse-webhooks/1"


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system's resolver)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in found})


def destination_problem(
    url: str, *, settings: Settings, resolver: Resolver = resolve
) -> str | None:
    """Why purse may not call ``url`` from here, or None (see the module's docstring)."""
    if settings.webhooks_reach_private_addresses:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError):
        return "unresolvable"
    if not addresses:
        return "unresolvable"
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            return problem
    return None


def check_destination(url: str, *, settings: Settings, resolver: Resolver = resolve) -> None:
    """Refuse an endpoint URL purse must not call (``webhook_url_not_allowed``)."""
    problem = destination_problem(url, settings=settings, resolver=resolver)
    if problem is not None:
        raise errors.WebhookUrlNotAllowed(reason=problem)


def signed_headers(claim: Claim, timestamp: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    signatures = " ".join(
        Webhook(secret).sign(claim.message_id, timestamp, claim.body) for secret in claim.secrets
    )
    return {
        "webhook-id": claim.message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def send(
    claim: Claim, *, settings: Settings, client: httpx.Client, resolver: Resolver = resolve
) -> Outcome:
    """One attempt: guard the address, post the body, keep a bounded part of the answer."""
    attempted_at = utc_now()
    started = time.monotonic()
    timestamp = int(attempted_at.timestamp())

    def outcome(
        status_code: int | None = None, excerpt: str | None = None, error: str | None = None
    ) -> Outcome:
        return Outcome(
            attempted_at=attempted_at,
            timestamp=timestamp,
            status_code=status_code,
            response_excerpt=excerpt,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    problem = destination_problem(claim.url, settings=settings, resolver=resolver)
    if problem is not None:
        return outcome(error=f"address_not_allowed:{problem}")
    headers = signed_headers(claim, attempted_at)
    try:
        with client.stream(
            "POST", claim.url, content=claim.body.encode(), headers=headers
        ) as response:
            taken = b""
            for chunk in response.iter_bytes():
                taken += chunk
                if len(taken) >= WEBHOOK_RESPONSE_EXCERPT_MAX:
                    break
            excerpt = taken[:WEBHOOK_RESPONSE_EXCERPT_MAX].decode("utf-8", errors="replace")
            return outcome(status_code=response.status_code, excerpt=excerpt)
    except httpx.TimeoutException:
        return outcome(error="timeout")
    except httpx.HTTPError as error:
        return outcome(error=type(error).__name__[:200])


def deliver_due(
    database: Database, *, identity: Identity, limit: int, resolver: Resolver = resolve
) -> int:
    """The worker's job: send every due delivery (up to ``limit``); returns how many."""
    settings = database.settings
    claims = database.run(
        lambda session: webhooks.claim_due(
            session, cipher=identity.cipher, now=utc_now(), limit=limit
        )
    )
    if not claims:
        return 0
    timeout = settings.merchant_webhook_timeout_seconds
    waits = settings.merchant_webhook_retry_seconds
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for claim in claims:
            result = send(claim, settings=settings, client=client, resolver=resolver)
            database.run(_recorder(identity, claim, result, waits))
    return len(claims)


def _recorder(
    identity: Identity, claim: Claim, outcome: Outcome, retry_seconds: list[int]
) -> Callable[[Session], str]:
    return lambda session: webhooks.record_attempt(
        session, identity=identity, claim=claim, outcome=outcome, retry_seconds=retry_seconds
    )
