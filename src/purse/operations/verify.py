"""The operations' part of the ledger check: every committed money event told its people.

Each kind declares who is told when it completes (``told_on_completion``). The
notice is written to the outbox in the transaction that completes the
operation, one message per channel the person has (phone, email), keyed by the
operation and template; the database refuses a second message for the same
event and channel, and this check finds events with none. Users always have a
contact (sign-up needs one); accounts an operator made without one are skipped.
A stored kind that no domain registered is reported too, and so are running
spending totals that disagree with the operations (:mod:`purse.operations.spending`).
"""

from __future__ import annotations

from sqlalchemy import exists, func, literal, or_, select
from sqlalchemy.orm import Session

from purse.identity.models import User
from purse.ledger.verify import VerifyReport
from purse.notify.models import OutboxMessage
from purse.operations import kinds
from purse.operations.models import Operation
from purse.operations.spending import check_spending

_PARTY_COLUMN = {kinds.Party.owner: "user_id", kinds.Party.counterparty: "counterparty_user_id"}


def check_operations(session: Session, report: VerifyReport) -> None:
    operations, users, outbox = Operation.__table__, User.__table__, OutboxMessage.__table__
    registered = {kind.name for kind in kinds.registered()}
    stored = set(session.scalars(select(operations.c.kind).distinct()))
    for unknown in sorted(stored - registered):
        report.add("operation_kinds", f"operations of kind {unknown!r}, which no domain registers")
    for kind in kinds.registered():
        for party, template in kind.told_on_completion:
            told = operations.c[_PARTY_COLUMN[party]]
            key = operations.c.reference + literal(f":{template}")
            missing = session.execute(
                select(func.count())
                .select_from(operations.join(users, users.c.id == told))
                .where(
                    operations.c.kind == kind.name,
                    operations.c.status == "completed",
                    or_(users.c.phone_encrypted.is_not(None), users.c.email_encrypted.is_not(None)),
                    ~exists().where(outbox.c.event_key == key),
                )
            ).scalar_one()
            if missing:
                report.add(
                    "notifications",
                    f"{missing} completed {kind.name} operations did not tell their {party} "
                    f"({template})",
                    kind=kind.name,
                    party=str(party),
                    count=missing,
                )
    check_spending(session, report)
