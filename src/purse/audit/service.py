"""Writing and verifying the audit log.

Events are appended in the caller's transaction, so an action and its audit
record commit together or not at all. Like the ledger, each event's id is its
place in a hash chain handed out under the chain-head lock: an event changed,
removed or inserted afterwards breaks the chain, and ``purse audit verify`` says
where. Never pass a password, code or token in ``data``; the keys that name such
secrets are refused outright.

Lock order: the audit chain head is the last row a transaction locks. A use case
that moves money and audits it calls the ledger first and ``record`` after, so
two such transactions can never hold the two chain heads in opposite orders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from purse.audit.models import AuditChainHead, AuditEvent
from purse.hashchain import GENESIS_HASH, link_hash
from purse.i18n import N_
from purse.models import utc_now

_events = cast(Table, AuditEvent.__table__)
_chain = cast(Table, AuditChainHead.__table__)
_SECRET_WORDS = ("password", "code", "token", "secret", "otp", "recovery")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a user, an agent, the system; and from where."""

    kind: str
    id: str | None = None
    address: str | None = None
    request_id: str | None = None


def record(
    session: Session,
    *,
    kind: str,
    actor: Actor,
    subject_user_id: int | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Append one event; returns its id."""
    assert session.in_transaction()
    payload = data or {}
    secret_keys = [key for key in payload if any(word in key.lower() for word in _SECRET_WORDS)]
    assert not secret_keys, f"audit data must not carry secrets: {secret_keys}"
    connection = session.connection()
    query = select(_chain.c.last_event_id, _chain.c.head_hash).where(_chain.c.id == 1)
    if connection.dialect.name != "sqlite":
        query = query.with_for_update()
    head = connection.execute(query).one()
    event_id = int(head.last_event_id) + 1
    created_at = now or utc_now()
    text = json.dumps(payload, sort_keys=True, default=str)
    fields = (
        event_id,
        kind,
        actor.kind,
        actor.id,
        subject_user_id,
        actor.address,
        actor.request_id,
        text,
        created_at,
    )
    event_hash = link_hash(head.head_hash, fields)
    connection.execute(
        insert(_events).values(
            id=event_id,
            kind=kind,
            actor_kind=actor.kind,
            actor_id=actor.id,
            subject_user_id=subject_user_id,
            address=actor.address,
            request_id=actor.request_id,
            data=text,
            created_at=created_at,
            hash=event_hash,
        )
    )
    connection.execute(
        update(_chain).where(_chain.c.id == 1).values(last_event_id=event_id, head_hash=event_hash)
    )
    return event_id


@dataclass
class AuditReport:
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit(session: Session, *, chunk: int = 5000) -> AuditReport:
    """Walk the chain from the start; report the first break."""
    connection = session.connection()
    report = AuditReport()
    previous, expected_id = GENESIS_HASH, 1
    while True:
        rows = connection.execute(
            select(_events).where(_events.c.id >= expected_id).order_by(_events.c.id).limit(chunk)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.id != expected_id:
                report.problems.append(f"audit events {expected_id} to {row.id - 1} are missing")
                return report
            fields = (
                row.id,
                row.kind,
                row.actor_kind,
                row.actor_id,
                row.subject_user_id,
                row.address,
                row.request_id,
                row.data,
                row.created_at,
            )
            if link_hash(previous, fields) != row.hash:
                report.problems.append(f"audit event {row.id} was changed after it was written")
                return report
            previous, expected_id = row.hash, row.id + 1
            report.events += 1
    head = connection.execute(select(_chain).where(_chain.c.id == 1)).one()
    if head.last_event_id != expected_id - 1 or head.head_hash != previous:
        report.problems.append("the audit chain head does not match the last event")
    return report


@dataclass(frozen=True, slots=True)
class ActivityRead:
    kind: str
    address: str | None
    created_at: datetime
    data: dict[str, Any]


# The sign-in and security events the security centre lists, with how each reads there
# (English message ids, translated where they are shown).
SIGN_IN_KINDS = {
    "login_succeeded": N_("Signed in"),
    "login_failed": N_("Failed sign-in attempt"),
    "account_locked": N_("Account locked after failed attempts"),
    "password_reset": N_("Password reset"),
    "totp_enabled": N_("Two-factor authentication turned on"),
    "totp_disabled": N_("Two-factor authentication turned off"),
    "sessions_ended": N_("Other devices signed out"),
}


def recent_activity(session: Session, *, user_id: int, limit: int = 10) -> list[ActivityRead]:
    """The user's latest sign-in and security events, newest first (for the security centre)."""
    rows = session.execute(
        select(_events.c.kind, _events.c.address, _events.c.created_at, _events.c.data)
        .where(_events.c.subject_user_id == user_id, _events.c.kind.in_(tuple(SIGN_IN_KINDS)))
        .order_by(_events.c.id.desc())
        .limit(limit)
    )
    return [
        ActivityRead(row.kind, row.address, row.created_at, json.loads(row.data)) for row in rows
    ]
