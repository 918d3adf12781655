"""Access helpers: may this principal see or act on that person's things, and why.

Every loader that fetches an object for someone (an operation, a statement, a
card) asks here when the object is not plainly the principal's own. The answer
is a :class:`Decision` that says why, so it can be audited and explained:

* a person may read their own history;
* a third-party app may, for its user, what its grant's scopes allow;
* a support agent may read a user's history only while an
  :class:`~purse.identity.models.AccessGrant` gives it to them for a reason
  ("case:123"); a role alone never opens a user's history;
* anyone else may not, and loaders then answer "not found", never "forbidden",
  so that the existence of other people's objects is not revealed.

Grants are given and ended by the domains that own the reason (a case being
assigned and closed), through :func:`grant_access` and :func:`end_access`, and
every change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.identity.errors import PermissionDenied
from purse.identity.models import AccessGrant
from purse.identity.permissions import allows
from purse.identity.principal import Principal, PrincipalKind
from purse.models import utc_now

GRANT_SECONDS_MAX = 30 * 24 * 60 * 60


class Permission(StrEnum):
    """What a principal may do with another person's things."""

    read_history = "history:read"  # their operations, balances and statements


# The scope of a third-party app grant that carries each permission.
_APP_SCOPES = {Permission.read_history: "activity:read"}
# The role permission an agent must have before any grant counts.
_AGENT_NEEDS = "support:work"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    because: str  # "own", "scope:activity:read", "case:123", or why not

    def __bool__(self) -> bool:
        return self.allowed


def decide(
    session: Session,
    *,
    principal: Principal,
    permission: Permission,
    subject_user_id: int,
    now: datetime | None = None,
) -> Decision:
    """Whether ``principal`` may ``permission`` on ``subject_user_id``'s things, and why."""
    now = now or utc_now()
    own = principal.user_id == subject_user_id
    if principal.kind in (PrincipalKind.user_session, PrincipalKind.demo):
        return Decision(own, "own" if own else "not_theirs")
    if principal.kind is PrincipalKind.app_grant:
        scope = _APP_SCOPES[permission]
        allowed = own and scope in principal.scopes
        return Decision(allowed, f"scope:{scope}" if allowed else "scope_missing")
    if principal.kind is PrincipalKind.agent and principal.user_id is not None:
        if not allows(principal.role, _AGENT_NEEDS):
            return Decision(False, "not_an_agent")
        grant = session.scalars(
            select(AccessGrant)
            .where(
                AccessGrant.grantee_user_id == principal.user_id,
                AccessGrant.subject_user_id == subject_user_id,
                AccessGrant.permission == str(permission),
                AccessGrant.revoked_at.is_(None),
                AccessGrant.expires_at > now,
            )
            .order_by(AccessGrant.id.desc())
            .limit(1)
        ).first()
        if grant is None:
            return Decision(False, "no_grant")
        return Decision(True, grant.reason)
    return Decision(False, "not_allowed")


def grant_access(
    session: Session,
    *,
    grantee_user_id: int,
    grantee_role: str,
    subject_user_id: int,
    permission: Permission,
    reason: str,
    seconds: int,
    actor: Actor,
    now: datetime | None = None,
) -> AccessGrant:
    """Let an agent ``permission`` on a user's things, for ``reason``, for ``seconds``."""
    now = now or utc_now()
    if not allows(grantee_role, _AGENT_NEEDS):
        raise PermissionDenied()
    assert 0 < seconds <= GRANT_SECONDS_MAX and 0 < len(reason) <= 64
    row = AccessGrant(
        grantee_user_id=grantee_user_id,
        subject_user_id=subject_user_id,
        permission=str(permission),
        reason=reason,
        granted_by=f"{actor.kind}:{actor.id or '-'}"[:64],
        created_at=now,
        expires_at=now + timedelta(seconds=seconds),
    )
    session.add(row)
    session.flush()
    record(
        session,
        kind="access_granted",
        actor=actor,
        subject_user_id=subject_user_id,
        data={
            "grant_id": row.id,
            "grantee_user_id": grantee_user_id,
            "permission": str(permission),
            "reason": reason,
        },
        now=now,
    )
    return row


def end_access(
    session: Session, *, grant_id: int, actor: Actor, now: datetime | None = None
) -> None:
    """End a grant before its time (the case closed); audited. Ending twice is harmless."""
    now = now or utc_now()
    row = session.get(AccessGrant, grant_id)
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at = now
    record(
        session,
        kind="access_ended",
        actor=actor,
        subject_user_id=row.subject_user_id,
        data={"grant_id": row.id, "reason": row.reason},
        now=now,
    )
