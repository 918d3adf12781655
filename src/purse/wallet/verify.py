"""The wallet's part of the ledger check: every committed money event told its user.

Each completed send, top-up and withdrawal writes its notice to the outbox in the
transaction that completes it, one message per channel the user has (phone,
email), keyed by the operation and template. The database refuses a second
message for the same event and channel; this check finds events with none.
Users always have a contact (sign-up needs one); accounts an operator made
without one are skipped.
"""

from __future__ import annotations

from sqlalchemy import exists, func, literal, or_, select
from sqlalchemy.orm import Session

from purse.identity.models import User
from purse.ledger.verify import VerifyReport
from purse.notify.models import OutboxMessage
from purse.wallet.models import Operation

# kind -> (who is told, template)
MONEY_EVENTS = {
    "send": ("counterparty_user_id", "money_received"),
    "top_up": ("user_id", "top_up_completed"),
    "withdrawal": ("user_id", "withdrawal_completed"),
}


def check_notifications(session: Session, report: VerifyReport) -> None:
    operations, users, outbox = Operation.__table__, User.__table__, OutboxMessage.__table__
    for kind, (told, template) in MONEY_EVENTS.items():
        key = operations.c.reference + literal(f":{template}")
        missing = session.execute(
            select(func.count())
            .select_from(operations.join(users, users.c.id == operations.c[told]))
            .where(
                operations.c.kind == kind,
                operations.c.status == "completed",
                or_(users.c.phone_encrypted.is_not(None), users.c.email_encrypted.is_not(None)),
                ~exists().where(outbox.c.event_key == key),
            )
        ).scalar_one()
        if missing:
            report.add(
                "notifications",
                f"{missing} completed {kind} operations told nobody (no outbox message)",
                kind=kind,
                count=missing,
            )
