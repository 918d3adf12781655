"""Webhooks: endpoints, the events of a merchant's payments, and their deliveries' records.

What happens to a payment is told to the merchant's endpoints as the Standard Webhooks
specification says (the signing and the HTTP side are :mod:`purse.merchants.delivery`):

* **Endpoints.** A merchant's developers register URLs, per mode, each with the event
  types it wants. Each has a signing secret (``whsec_...``), shown once and kept
  encrypted, since purse signs with it. Rotating it shows a new one; the old one keeps
  signing beside it for an overlap, so the merchant can deploy the new one.
* **Events** are written by :func:`emit` in the transaction that changed the payment (an
  outbox): a rolled-back capture has no event, and a committed one always has. The body
  is kept as it will be sent, so every attempt sends the same bytes under the same id.
* **Deliveries**, one per event and subscribed endpoint, are picked up by the worker,
  never in the transaction that made the event. They are retried with back-off
  (``PURSE_MERCHANT_WEBHOOK_RETRY_SECONDS``) until a 2xx answer; when the schedule runs
  out, the delivery fails, the endpoint is disabled and the merchant's owners and
  developers are told. Every attempt is logged, with a bounded part of the answer, and
  a delivery can be sent again by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import RowMapping, Table, insert, select, update
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.crypto import FieldCipher
from purse.identity.context import Identity
from purse.merchants import errors, members
from purse.merchants.models import (
    WEBHOOK_EVENT_TYPES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from purse.merchants.rules import (
    WEBHOOK_LEASE_SECONDS,
    clean_event_types,
    clean_name,
    new_message_id,
    new_webhook_secret,
    next_attempt_after,
    webhook_url_problem,
)
from purse.models import utc_now

_endpoints = cast(Table, WebhookEndpoint.__table__)
_events = cast(Table, WebhookEvent.__table__)
_deliveries = cast(Table, WebhookDelivery.__table__)
_attempts = cast(Table, WebhookAttempt.__table__)

DESCRIPTION_LENGTH_MAX = 200
ROTATION_OVERLAP_SECONDS_MAX = 7 * 24 * 3600
DELIVERIES_PAGE_MAX = 100


def _context(merchant_id: int) -> str:
    return f"merchant_webhook:{merchant_id}"


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: int
    merchant_id: int
    mode: str
    url: str
    description: str | None
    event_types: tuple[str, ...]
    status: str
    disabled_reason: str | None
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime


def _endpoint(row: RowMapping) -> EndpointRecord:
    return EndpointRecord(
        id=row["id"],
        merchant_id=row["merchant_id"],
        mode=row["mode"],
        url=row["url"],
        description=row["description"],
        event_types=tuple(row["event_types"].split()),
        status=row["status"],
        disabled_reason=row["disabled_reason"],
        previous_secret_until=row["previous_secret_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def check_endpoint_fields(url: str, event_types: list[str], description: str | None) -> None:
    """Refuse a URL or event types that cannot be an endpoint's (before any look-up)."""
    problem = webhook_url_problem(url)
    if problem is not None:
        raise errors.WebhookUrlInvalid(reason=problem)
    if clean_event_types(event_types, WEBHOOK_EVENT_TYPES) is None:
        raise errors.WebhookEventTypesInvalid(known=", ".join(WEBHOOK_EVENT_TYPES))
    if description is not None:
        cleaned = clean_name(description, length_max=DESCRIPTION_LENGTH_MAX)
        if cleaned.value is None:
            raise errors.MerchantNameInvalid(
                field="description", reason=cleaned.reason, length_max=DESCRIPTION_LENGTH_MAX
            )


def create_endpoint(
    session: Session,
    *,
    cipher: FieldCipher,
    merchant_id: int,
    mode: str,
    url: str,
    event_types: list[str],
    description: str | None,
    actor: Actor,
    now: datetime | None = None,
) -> tuple[EndpointRecord, str]:
    """Register an endpoint; returns it and its signing secret (shown this once)."""
    now = now or utc_now()
    check_endpoint_fields(url, event_types, description)
    chosen = clean_event_types(event_types, WEBHOOK_EVENT_TYPES)
    assert chosen is not None
    secret = new_webhook_secret()
    endpoint_id = session.execute(
        insert(_endpoints)
        .values(
            merchant_id=merchant_id,
            mode=mode,
            url=url,
            description=clean_name(description, length_max=DESCRIPTION_LENGTH_MAX).value
            if description is not None
            else None,
            event_types=" ".join(chosen),
            status="enabled",
            secret_encrypted=cipher.encrypt(secret, context=_context(merchant_id)),
            created_at=now,
            updated_at=now,
        )
        .returning(_endpoints.c.id)
    ).scalar_one()
    record(
        session,
        kind="merchant_webhook_endpoint_created",
        actor=actor,
        data={"merchant_id": merchant_id, "endpoint_id": endpoint_id, "mode": mode},
        now=now,
    )
    return endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id), secret


def endpoints(session: Session, *, merchant_id: int) -> list[EndpointRecord]:
    rows = session.execute(
        select(_endpoints).where(_endpoints.c.merchant_id == merchant_id).order_by(_endpoints.c.id)
    )
    return [_endpoint(row._mapping) for row in rows]


def endpoint(
    session: Session, *, merchant_id: int, endpoint_id: int, lock: bool = False
) -> EndpointRecord:
    """One of the merchant's endpoints; another merchant's is "not found"."""
    query = select(_endpoints).where(
        _endpoints.c.id == endpoint_id, _endpoints.c.merchant_id == merchant_id
    )
    if lock and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise errors.WebhookEndpointNotFound()
    return _endpoint(row._mapping)


def rotate_secret(
    session: Session,
    *,
    cipher: FieldCipher,
    merchant_id: int,
    endpoint_id: int,
    overlap_seconds: int,
    actor: Actor,
    now: datetime | None = None,
) -> tuple[EndpointRecord, str]:
    """A new signing secret; the old one signs beside it for ``overlap_seconds``."""
    now = now or utc_now()
    endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id, lock=True)
    current = session.execute(
        select(_endpoints.c.secret_encrypted).where(_endpoints.c.id == endpoint_id)
    ).scalar_one()
    secret = new_webhook_secret()
    session.execute(
        update(_endpoints)
        .where(_endpoints.c.id == endpoint_id)
        .values(
            secret_encrypted=cipher.encrypt(secret, context=_context(merchant_id)),
            previous_secret_encrypted=current if overlap_seconds > 0 else None,
            previous_secret_until=now + timedelta(seconds=overlap_seconds)
            if overlap_seconds > 0
            else None,
            updated_at=now,
        )
    )
    record(
        session,
        kind="merchant_webhook_secret_rotated",
        actor=actor,
        data={
            "merchant_id": merchant_id,
            "endpoint_id": endpoint_id,
            "overlap_seconds": overlap_seconds,
        },
        now=now,
    )
    return endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id), secret


def set_enabled(
    session: Session,
    *,
    merchant_id: int,
    endpoint_id: int,
    enabled: bool,
    actor: Actor,
    now: datetime | None = None,
) -> EndpointRecord:
    """Turn an endpoint off (nothing more is sent to it) or back on."""
    now = now or utc_now()
    endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id, lock=True)
    session.execute(
        update(_endpoints)
        .where(_endpoints.c.id == endpoint_id)
        .values(
            status="enabled" if enabled else "disabled",
            disabled_reason=None if enabled else "by_merchant",
            updated_at=now,
        )
    )
    record(
        session,
        kind="merchant_webhook_endpoint_enabled"
        if enabled
        else "merchant_webhook_endpoint_disabled",
        actor=actor,
        data={"merchant_id": merchant_id, "endpoint_id": endpoint_id},
        now=now,
    )
    return endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id)


# Events -------------------------------------------------------------------------------------


def emit(
    session: Session,
    *,
    merchant_id: int,
    mode: str,
    event_type: str,
    payment_id: int | None,
    data: dict[str, Any],
    now: datetime,
) -> str:
    """Write an event and a delivery to each enabled endpoint that wants it; returns the
    event's message id. Runs in the caller's transaction: the event exists if and only if
    what it reports committed."""
    assert event_type in WEBHOOK_EVENT_TYPES, event_type
    message_id = new_message_id()
    body = json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    event_id = session.execute(
        insert(_events)
        .values(
            message_id=message_id,
            merchant_id=merchant_id,
            mode=mode,
            event_type=event_type,
            payment_id=payment_id,
            body=body,
            created_at=now,
        )
        .returning(_events.c.id)
    ).scalar_one()
    wanted = [
        row.id
        for row in session.execute(
            select(_endpoints.c.id, _endpoints.c.event_types).where(
                _endpoints.c.merchant_id == merchant_id,
                _endpoints.c.mode == mode,
                _endpoints.c.status == "enabled",
            )
        )
        if event_type in row.event_types.split()
    ]
    if wanted:
        session.execute(
            insert(_deliveries),
            [
                {
                    "event_id": event_id,
                    "endpoint_id": endpoint_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for endpoint_id in wanted
            ],
        )
    return message_id


# Deliveries ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery a worker took, with all it needs to send it (secrets in the clear)."""

    delivery_id: int
    endpoint_id: int
    merchant_id: int
    url: str
    message_id: str
    body: str
    secrets: tuple[str, ...]
    attempts: int


def claim_due(session: Session, *, cipher: FieldCipher, now: datetime, limit: int) -> list[Claim]:
    """Take up to ``limit`` deliveries that are due, leasing each to this worker.

    On PostgreSQL ``SKIP LOCKED`` keeps two workers off the same rows; the lease (the next
    attempt moved past the attempt's time) keeps them off after this commits. A worker
    that dies mid-attempt leaves the lease to run out, and the delivery is tried again
    with the same message id.
    """
    query = (
        select(
            _deliveries.c.id,
            _deliveries.c.endpoint_id,
            _deliveries.c.attempts,
            _endpoints.c.merchant_id,
            _endpoints.c.url,
            _endpoints.c.secret_encrypted,
            _endpoints.c.previous_secret_encrypted,
            _endpoints.c.previous_secret_until,
            _events.c.message_id,
            _events.c.body,
        )
        .join(_endpoints, _endpoints.c.id == _deliveries.c.endpoint_id)
        .join(_events, _events.c.id == _deliveries.c.event_id)
        .where(
            _deliveries.c.status == "pending",
            _deliveries.c.next_attempt_at <= now,
            _endpoints.c.status == "enabled",
        )
        .order_by(_deliveries.c.next_attempt_at, _deliveries.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(of=_deliveries, skip_locked=True)
    rows = session.execute(query).all()
    if not rows:
        return []
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id.in_([row.id for row in rows]))
        .values(next_attempt_at=now + timedelta(seconds=WEBHOOK_LEASE_SECONDS))
    )
    claims = []
    for row in rows:
        context = _context(row.merchant_id)
        secrets = [cipher.decrypt(row.secret_encrypted, context=context)]
        if (
            row.previous_secret_encrypted
            and row.previous_secret_until
            and (row.previous_secret_until > now)
        ):
            secrets.append(cipher.decrypt(row.previous_secret_encrypted, context=context))
        claims.append(
            Claim(
                delivery_id=row.id,
                endpoint_id=row.endpoint_id,
                merchant_id=row.merchant_id,
                url=row.url,
                message_id=row.message_id,
                body=row.body,
                secrets=tuple(secrets),
                attempts=row.attempts,
            )
        )
    return claims


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got back: a status code, or an error before any answer."""

    attempted_at: datetime
    timestamp: int
    status_code: int | None
    response_excerpt: str | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_attempt(
    session: Session,
    *,
    identity: Identity,
    claim: Claim,
    outcome: Outcome,
    retry_seconds: list[int],
) -> str:
    """Log an attempt and decide what follows: done, again later, or failed for good (the
    endpoint then disabled and the merchant told). Returns the delivery's status."""
    now = outcome.attempted_at
    session.execute(
        insert(_attempts).values(
            delivery_id=claim.delivery_id,
            attempted_at=now,
            timestamp=outcome.timestamp,
            status_code=outcome.status_code,
            response_excerpt=outcome.response_excerpt,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    attempts = claim.attempts + 1
    if outcome.ok:
        status, next_at = "succeeded", None
    else:
        wait = next_attempt_after(attempts, retry_seconds)
        status = "pending" if wait is not None else "failed"
        next_at = now + timedelta(seconds=wait) if wait is not None else None
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == claim.delivery_id)
        .values(
            status=status,
            attempts=attempts,
            next_attempt_at=next_at,
            last_attempt_at=now,
            last_status_code=outcome.status_code,
        )
    )
    if status == "failed":
        _disable_failing(session, identity=identity, claim=claim, now=now)
    return status


def _disable_failing(session: Session, *, identity: Identity, claim: Claim, now: datetime) -> None:
    """An endpoint that failed a delivery all the way through its retries (about a day)
    is turned off, and the merchant's owners and developers are told."""
    changed = session.execute(
        update(_endpoints)
        .where(_endpoints.c.id == claim.endpoint_id, _endpoints.c.status == "enabled")
        .values(status="disabled", disabled_reason="failing", updated_at=now)
    )
    if not getattr(changed, "rowcount", 0):
        return
    record(
        session,
        kind="merchant_webhook_endpoint_disabled",
        actor=Actor(kind="system", id="job:deliver_webhooks"),
        data={
            "merchant_id": claim.merchant_id,
            "endpoint_id": claim.endpoint_id,
            "reason": "failing",
        },
        now=now,
    )
    members.tell_team(
        session,
        identity=identity,
        merchant_id=claim.merchant_id,
        template="webhook_endpoint_disabled",
        data={"url": claim.url},
        event_key=f"webhook_endpoint:{claim.endpoint_id}:disabled:{now.isoformat()}",
        now=now,
    )


def resend(
    session: Session, *, merchant_id: int, delivery_id: int, actor: Actor, now: datetime
) -> DeliveryRecord:
    """Send a delivery again now (same message id), whatever became of it before."""
    row = session.execute(
        select(_deliveries.c.id)
        .join(_endpoints, _endpoints.c.id == _deliveries.c.endpoint_id)
        .where(_deliveries.c.id == delivery_id, _endpoints.c.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise errors.WebhookDeliveryNotFound()
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id)
        .values(status="pending", next_attempt_at=now)
    )
    record(
        session,
        kind="merchant_webhook_resent",
        actor=actor,
        data={"merchant_id": merchant_id, "delivery_id": delivery_id},
        now=now,
    )
    return deliveries(session, merchant_id=merchant_id, delivery_ids=[delivery_id])[0]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempted_at: datetime
    status_code: int | None
    response_excerpt: str | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    endpoint_id: int
    message_id: str
    event_type: str
    body: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    log: tuple[AttemptRecord, ...]


def deliveries(
    session: Session,
    *,
    merchant_id: int,
    endpoint_id: int | None = None,
    delivery_ids: list[int] | None = None,
    cursor: int | None = None,
    limit: int = 20,
) -> list[DeliveryRecord]:
    """The merchant's deliveries (of one endpoint, or these), newest first, with their log."""
    conditions = [_endpoints.c.merchant_id == merchant_id]
    if endpoint_id is not None:
        conditions.append(_deliveries.c.endpoint_id == endpoint_id)
    if delivery_ids is not None:
        conditions.append(_deliveries.c.id.in_(delivery_ids))
    if cursor is not None:
        conditions.append(_deliveries.c.id < cursor)
    rows = session.execute(
        select(_deliveries, _events.c.message_id, _events.c.event_type, _events.c.body)
        .join(_endpoints, _endpoints.c.id == _deliveries.c.endpoint_id)
        .join(_events, _events.c.id == _deliveries.c.event_id)
        .where(*conditions)
        .order_by(_deliveries.c.id.desc())
        .limit(min(limit, DELIVERIES_PAGE_MAX))
    ).all()
    logs: dict[int, list[AttemptRecord]] = {row.id: [] for row in rows}
    if logs:
        for attempt in session.execute(
            select(_attempts)
            .where(_attempts.c.delivery_id.in_(list(logs)))
            .order_by(_attempts.c.id)
        ):
            logs[attempt.delivery_id].append(
                AttemptRecord(
                    attempted_at=attempt.attempted_at,
                    status_code=attempt.status_code,
                    response_excerpt=attempt.response_excerpt,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )
    return [
        DeliveryRecord(
            id=row.id,
            endpoint_id=row.endpoint_id,
            message_id=row.message_id,
            event_type=row.event_type,
            body=row.body,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            created_at=row.created_at,
            log=tuple(logs[row.id]),
        )
        for row in rows
    ]
