"""Who acts, and how they proved it: the principal every use case is given.

Every use case that reads or moves something on someone's behalf takes a
:class:`Principal`, never a bare user id. It names the kind of actor (a person
signed in on the web or with API tokens, a third-party app within a grant, a
merchant's API key, a support agent on a case, a background job, the demo
seeder), who exactly (the ``id`` the ledger records as the initiator of every
transfer), and the factors it authenticated with. So every debit says who
started it and how, and access decisions (:mod:`purse.identity.access`) have
everything they need.

Principals are built at the edges (``purse.deps`` for the API, ``purse.web.views``
for pages, the job runner, the demo) from what was authenticated there, and are
immutable afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from purse.identity import rules
from purse.identity.errors import PermissionDenied, StepUpRequired
from purse.identity.sessions import Authenticated
from purse.ledger.rules import Initiator
from purse.settings import Settings


class PrincipalKind(StrEnum):
    user_session = "user_session"  # a person, signed in on the web or with API tokens
    app_grant = "app_grant"  # a third-party app, within what its user granted
    merchant_key = "merchant_key"  # a merchant's server, with an API key
    agent = "agent"  # a support agent, acting on a case
    system = "system"  # a background job of purse itself
    demo = "demo"  # the demo seeder, making example history


# Kinds that act on the wallet of ``user_id`` (their own, or one granted to them).
_WALLET_KINDS = frozenset({PrincipalKind.user_session, PrincipalKind.app_grant, PrincipalKind.demo})
# How a session was opened: the channel, as the first factor.
_CHANNELS = {"web": "web_session", "api": "access_token"}


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str  # the ledger's initiator id: "session:12", "job:expire_holds", "demo:seed"
    user_id: int | None  # the person acting: the user, the agent, the user who granted an app
    factors: tuple[str, ...]  # how it proved itself: ("web_session", "password", "totp")
    role: str = "user"
    session_id: int | None = None
    device: str | None = None
    # When the password (and second factor) was last checked: at sign-in or at a step-up.
    authenticated_at: datetime | None = None
    signed_in_at: datetime | None = None
    scopes: frozenset[str] = frozenset()  # what an app grant or an API key may do
    case: str | None = None  # the case an agent acts on
    address: str | None = None  # the client's network address, when it came over HTTP
    merchant_id: int | None = None  # the merchant a key belongs to
    key_id: int | None = None  # a merchant key's id
    mode: str | None = None  # a merchant key's mode: "test" or "live"

    # Building ----------------------------------------------------------------------------

    @classmethod
    def of_session(cls, current: Authenticated, *, address: str | None = None) -> Principal:
        """A person signed in with a web session or an API token pair (from ``address``)."""
        channel = _CHANNELS.get(current.kind, current.kind)
        return cls(
            kind=PrincipalKind.user_session,
            id=f"session:{current.session_id}",
            user_id=current.user_id,
            factors=(channel, *current.auth_method.split("+")),
            role=current.role,
            session_id=current.session_id,
            device=current.device,
            authenticated_at=current.authenticated_at,
            signed_in_at=current.created_at,
            address=address,
        )

    @classmethod
    def agent(cls, current: Authenticated, *, case: str | None = None) -> Principal:
        """A support agent, signed in, acting on ``case`` (what grants their access)."""
        session_principal = cls.of_session(current)
        return cls(
            kind=PrincipalKind.agent,
            id=f"agent:{current.user_id}" + (f"/{case}" if case else ""),
            user_id=current.user_id,
            factors=session_principal.factors,
            role=current.role,
            session_id=current.session_id,
            device=current.device,
            authenticated_at=current.authenticated_at,
            signed_in_at=current.created_at,
            case=case,
        )

    @classmethod
    def merchant_key(
        cls,
        *,
        key_id: int,
        merchant_id: int,
        mode: str,
        scopes: frozenset[str],
        address: str | None = None,
    ) -> Principal:
        """A merchant's server, with one of its API keys. It has no wallet of its own:
        ``wallet_user_id`` refuses it, so no user's endpoint serves a merchant key."""
        return cls(
            kind=PrincipalKind.merchant_key,
            id=f"key:{key_id}",
            user_id=None,
            factors=("api_key",),
            scopes=scopes,
            merchant_id=merchant_id,
            key_id=key_id,
            mode=mode,
            address=address,
        )

    @classmethod
    def system(cls, job: str) -> Principal:
        """A background job of purse itself (expiring holds, following up a bank, ...)."""
        return cls(kind=PrincipalKind.system, id=f"job:{job}", user_id=None, factors=("system",))

    @classmethod
    def demo(cls, user_id: int) -> Principal:
        """The demo seeder making ``user_id``'s example history (``purse serve --demo``)."""
        return cls(
            kind=PrincipalKind.demo, id="demo:seed", user_id=user_id, factors=("demo_seeder",)
        )

    # Reading -----------------------------------------------------------------------------

    @property
    def wallet_user_id(self) -> int:
        """The user whose wallet this principal acts on; refused for kinds that have none."""
        if self.kind not in _WALLET_KINDS or self.user_id is None:
            raise PermissionDenied()
        return self.user_id

    def stepped_up(self, *, settings: Settings, now: datetime) -> bool:
        """Whether the password was confirmed again after sign-in, recently enough to count."""
        if self.authenticated_at is None or self.signed_in_at is None:
            return False
        return self.authenticated_at > self.signed_in_at and rules.confirmed_recently(
            authenticated_at=self.authenticated_at,
            max_age_seconds=settings.step_up_max_age_seconds,
            now=now,
        )

    def authenticated_by(self, *, settings: Settings, now: datetime) -> str:
        """The factors, joined: "web_session+password+totp", "+step_up" after a fresh one."""
        factors = self.factors
        if self.stepped_up(settings=settings, now=now):
            factors = (*factors, "step_up")
        return "+".join(factors)

    def initiator(self, *, settings: Settings, now: datetime) -> Initiator:
        """What the ledger records on every transfer this principal starts."""
        return Initiator(
            kind=str(self.kind),
            id=self.id,
            authenticated_by=self.authenticated_by(settings=settings, now=now),
        )

    # Deciding ----------------------------------------------------------------------------

    def needs_step_up(self, action: str, *, settings: Settings, now: datetime) -> bool:
        """Whether ``action`` needs a fresh password confirmation from this principal first.

        Only people confirm a password; jobs, the demo, apps and keys are governed by
        their own limits, never by step-up.
        """
        if self.kind is not PrincipalKind.user_session or self.authenticated_at is None:
            return False
        return rules.step_up_needed(
            action=action,
            actions=settings.step_up_actions,
            authenticated_at=self.authenticated_at,
            max_age_seconds=settings.step_up_max_age_seconds,
            now=now,
        )

    def require_step_up(self, action: str, *, settings: Settings, now: datetime) -> None:
        """Raise ``step_up_required`` if ``action`` needs a fresh confirmation first."""
        if self.needs_step_up(action, settings=settings, now=now):
            raise StepUpRequired(action=action)
