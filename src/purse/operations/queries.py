"""Reads of operations: one operation with its timeline, as a party or an authorised reader sees it.

A person sees the operations they made and the sends made to them; the person
who received money does not see the sender's session, device or card. Anyone
else gets "not found" unless an access helper (:mod:`purse.identity.access`)
says they may read the owner's history, and then sees it as the owner would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from purse.errors import PurseError, all_error_classes
from purse.funding.errors import BankDeclined
from purse.funding.queries import SourceView, sources_by_id
from purse.identity import access
from purse.identity.principal import Principal
from purse.identity.rules import mask_name
from purse.identity.users import people
from purse.operations import kinds, rules
from purse.operations.errors import OperationNotFound
from purse.operations.models import Operation, OperationEvent


@dataclass(frozen=True, slots=True)
class Party:
    user_id: int
    handle: str
    masked_name: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    event: str
    detail: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OperationView:
    id: int
    reference: str
    kind: str
    status: str
    direction: str
    asset: str
    amount_minor: int
    fee_minor: int
    to_asset: str | None
    to_amount_minor: int | None
    rate: str | None
    note: str | None
    counterparty: Party | None
    funding_source: SourceView | None
    failure_code: str | None
    money_request_id: int | None
    created_at: datetime
    completed_at: datetime | None
    hold_expires_at: datetime | None
    # Who started it and how; only for the owner (and those who read as the owner).
    initiator_kind: str | None
    authenticated_by: str | None
    device: str | None
    timeline: tuple[TimelineEntry, ...] = ()
    # The merchant payment behind a payment or a refund (registered by its domain).
    merchant_payment: kinds.MerchantPaymentDetails | None = None

    @property
    def label(self) -> str:
        """What kind of operation it is, for people (English; the message id)."""
        return kinds.get(self.kind).label

    @property
    def failure(self) -> PurseError | None:
        """The failure as an error of the catalogue, for its message and next step."""
        if self.failure_code is None:
            return None
        cls = all_error_classes().get(self.failure_code, BankDeclined)
        return cls()

    @property
    def shown_amount_minor(self) -> int:
        """What moved: for a merchant payment once taken, what the merchant took (a capture
        may take less than was approved)."""
        paid = self.merchant_payment
        if paid is not None and self.kind == "payment" and self.status == "completed":
            return paid.captured_minor
        return self.amount_minor

    @property
    def signed_amount_minor(self) -> int:
        amount = self.shown_amount_minor
        return -amount if self.direction == "out" else amount


# Built once: an answer about an operation written earlier reads its timeline.
_TIMELINES = (
    select(OperationEvent)
    .where(OperationEvent.operation_id.in_(bindparam("ids", expanding=True)))
    .order_by(OperationEvent.id)
)


# session.info: the timelines of the operations this session wrote, as it wrote them.
_WRITTEN = "purse.operations.timelines"


def start_timeline(session: Session, operation_id: int) -> None:
    """Remember the timeline of an operation this session has just written.

    Its answer is then built from what was written instead of being read back: the
    session sees every event it adds (:func:`purse.operations.service.add_event` is the
    only writer of events), and nobody else can add one before it commits.
    """
    session.info.setdefault(_WRITTEN, {})[operation_id] = []


def record_event(session: Session, operation_id: int, entry: TimelineEntry) -> None:
    timeline = session.info.get(_WRITTEN, {}).get(operation_id)
    if timeline is not None:
        timeline.append(entry)


def parties(session: Session, user_ids: set[int]) -> dict[int, Party]:
    """Other people as a party sees them: handle and masked name."""
    # A use case answering about what it just wrote has read these people already.
    return {
        found.id: Party(found.id, found.handle, mask_name(found.display_name))
        for found in people(session, user_ids).values()
    }


def views(
    session: Session,
    operations: Sequence[Operation],
    *,
    viewer_id: int,
    with_timeline: bool = False,
) -> list[OperationView]:
    """Operations as ``viewer_id`` sees them (a party to each of them)."""
    others = parties(
        session,
        {
            other
            for operation in operations
            for other in (operation.user_id, operation.counterparty_user_id)
            if other is not None and other != viewer_id
        },
    )
    sources = sources_by_id(
        session, (o.funding_source_id for o in operations if o.funding_source_id is not None)
    )
    timelines: dict[int, list[TimelineEntry]] = defaultdict(list)
    written = session.info.get(_WRITTEN, {}) if with_timeline else {}
    unread = [o.id for o in operations if o.id not in written] if with_timeline else []
    timelines.update({o.id: written[o.id] for o in operations if o.id in written})
    if unread:
        for event in session.scalars(_TIMELINES, {"ids": unread}):
            timelines[event.operation_id].append(
                TimelineEntry(event=event.event, detail=event.detail, at=event.created_at)
            )
    details = _details(session, operations)
    found = []
    for operation in operations:
        mine = operation.user_id == viewer_id
        other = operation.counterparty_user_id if mine else operation.user_id
        source = operation.funding_source_id
        found.append(
            OperationView(
                id=operation.id,
                reference=operation.reference,
                kind=operation.kind,
                status=operation.status,
                direction=str(kinds.get(operation.kind).direction_for(is_owner=mine)),
                asset=operation.asset,
                amount_minor=operation.amount_minor,
                fee_minor=operation.fee_minor,
                to_asset=operation.to_asset,
                to_amount_minor=operation.to_amount_minor,
                rate=operation.rate,
                note=operation.note,
                counterparty=others.get(other) if other is not None else None,
                funding_source=sources.get(source) if mine and source is not None else None,
                failure_code=operation.failure_code,
                money_request_id=operation.money_request_id,
                created_at=operation.created_at,
                completed_at=operation.completed_at,
                hold_expires_at=operation.hold_expires_at
                if operation.status == "pending"
                else None,
                initiator_kind=operation.initiator_kind if mine else None,
                authenticated_by=operation.authenticated_by if mine else None,
                device=operation.device if mine else None,
                timeline=tuple(timelines.get(operation.id, ())),
                merchant_payment=details.get(operation.id),
            )
        )
    return found


def _details(
    session: Session, operations: Sequence[Operation]
) -> dict[int, kinds.MerchantPaymentDetails]:
    """What the domains that own these operations' kinds add to them, one read per kind."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for operation in operations:
        by_kind[operation.kind].append(operation.id)
    found: dict[int, kinds.MerchantPaymentDetails] = {}
    for name, ids in by_kind.items():
        loader = kinds.get(name).details
        if loader is not None:
            found.update(loader(session, ids))
    return found


def operation_for(session: Session, *, principal: Principal, reference: str) -> OperationView:
    """One operation with its timeline, for ``principal``; "not found" unless they may see it.

    The parties see it from their side. Someone an access helper lets read the
    owner's history (an agent on the owner's case) sees it as the owner does.
    """
    operation = session.scalars(
        select(Operation).where(Operation.reference == rules.normalize_reference(reference))
    ).first()
    if operation is None:
        raise OperationNotFound()
    for party in (operation.user_id, operation.counterparty_user_id):
        if party is not None and access.decide(
            session,
            principal=principal,
            permission=access.Permission.read_history,
            subject_user_id=party,
        ):
            return views(session, [operation], viewer_id=party, with_timeline=True)[0]
    raise OperationNotFound()


def view_of(session: Session, *, operation: Operation, user_id: int) -> OperationView:
    """The view of an operation a use case just wrote or replayed, for its answer."""
    return views(session, [operation], viewer_id=user_id, with_timeline=True)[0]
