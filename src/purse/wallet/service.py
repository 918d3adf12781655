"""Wallet use cases between people: sending money, and asking for it.

Each runs in the caller's DB transaction (``database.run``) and either completes
or raises, leaving nothing behind. Idempotency and lock order are described in
:mod:`purse.operations.service`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from purse.db import RetryTransaction
from purse.identity.context import notify_user
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.identity.rules import mask_name
from purse.identity.throttle import take
from purse.identity.users import find_person, find_user, person
from purse.ledger import errors as ledger_errors
from purse.ledger import queries as ledger_queries
from purse.ledger.rules import AccountStatus, TransferKind, TransferRequest
from purse.models import utc_now
from purse.money.amounts import Money, format_amount
from purse.operations import rules as operation_rules
from purse.operations.accounts import account_id, account_ids, user_owner
from purse.operations.service import (
    OperationResult,
    check_large_transfer,
    check_limits,
    lock_user,
    new_operation,
    notify_operation,
    post_for,
    replay,
)
from purse.wallet.context import Wallet
from purse.wallet.errors import (
    MoneyRequestExpired,
    MoneyRequestNotFound,
    MoneyRequestNotOpen,
    MoneyRequestTooLarge,
    MoneyRequestToSelf,
    NoteTooLong,
    RecipientCannotReceive,
    RecipientIsSelf,
    RecipientLookupsThrottled,
    RecipientNotFound,
)
from purse.wallet.kinds import SEND
from purse.wallet.models import MoneyRequest

# Sending money ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    handle: str
    masked_name: str


def find_recipient(session: Session, *, wallet: Wallet, principal: Principal, to: str) -> Recipient:
    """Who a phone number, email or handle belongs to, shown masked before money is sent."""
    user = find_person(session, identity=wallet.identity, identifier=to)
    if user is None:
        raise RecipientNotFound(recipient=to.strip()[:64])
    if user.id == principal.wallet_user_id:
        raise RecipientIsSelf()
    if user.status != "active":
        raise RecipientCannotReceive()
    return Recipient(user_id=user.id, handle=user.handle, masked_name=mask_name(user.display_name))


def count_lookup(
    session: Session, *, wallet: Wallet, principal: Principal, now: datetime | None = None
) -> None:
    """Count one recipient look-up, per user and per client address; refuse past the bound.

    Without a bound, anyone signed in could turn a list of phone numbers or emails into
    handles and masked names. What shows a name for free is counted: checking a
    recipient before sending (in a transaction of its own, so a miss counts like a hit)
    and asking someone for money (the answer names the payer). A send is not: it shows a
    name only once money has moved, and many people (a shop paying its suppliers) send
    far more often than anyone checks.
    """
    now = now or utc_now()
    settings = wallet.settings
    window = settings.recipient_lookup_window_seconds
    bounds = [(f"lookup:user:{principal.wallet_user_id}", settings.recipient_lookups_max)]
    if principal.address:
        bounds.append(
            (f"lookup:address:{principal.address}", settings.recipient_lookups_per_address_max)
        )
    for key, most in bounds:
        wait = take(session, key, now=now, window_seconds=window, attempts_max=most)
        if wait is not None:
            raise RecipientLookupsThrottled(retry_after_seconds=wait)


def clean_note(wallet: Wallet, note: str | None) -> str | None:
    if note is None:
        return None
    cleaned = " ".join(note.split())
    if len(cleaned) > wallet.settings.note_length_max:
        raise NoteTooLong(length_max=wallet.settings.note_length_max)
    return cleaned or None


def send(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    to: str,
    asset: str,
    amount_minor: int,
    note: str | None,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Send money to another user by phone, email or handle, at once."""
    fingerprint = operation_rules.fingerprint(
        {
            "kind": "send",
            "to": to.strip().lower(),
            "asset": asset,
            "amount": amount_minor,
            "note": note,
        }
    )
    replayed = replay(
        session,
        operations=wallet.operations,
        user_id=principal.wallet_user_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    if replayed is not None:
        return OperationResult(replayed, replayed=True)
    recipient = find_recipient(session, wallet=wallet, principal=principal, to=to)
    return _send_to(
        session,
        wallet=wallet,
        principal=principal,
        recipient_id=recipient.user_id,
        asset=asset,
        amount_minor=amount_minor,
        note=note,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        money_request_id=None,
        now=now or utc_now(),
    )


def _send_to(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    recipient_id: int,
    asset: str,
    amount_minor: int,
    note: str | None,
    idempotency_key: str,
    fingerprint: str,
    money_request_id: int | None,
    now: datetime,
) -> OperationResult:
    offered = wallet.offered(asset)
    cleaned_note = clean_note(wallet, note)
    check_large_transfer(
        wallet.operations, principal=principal, asset=offered, amount_minor=amount_minor, now=now
    )
    sender = lock_user(session, principal.wallet_user_id)
    check_limits(
        session,
        operations=wallet.operations,
        user=sender,
        asset=offered,
        amount_minor=amount_minor,
        now=now,
    )
    owners = user_owner(sender.id), user_owner(recipient_id)
    found = account_ids(session, owners=owners, asset=offered.code)
    source = found.get(owners[0])
    if source is None:
        raise ledger_errors.InsufficientFunds()
    target = found.get(owners[1]) or account_id(session, owner=owners[1], asset=offered.code)
    assert target is not None
    # The money moves first and the operation is written once, completed: no UPDATE.
    reference = operation_rules.new_reference()
    try:
        posted = post_for(
            session,
            operations=wallet.operations,
            reference=reference,
            initiator=principal.initiator(settings=wallet.settings, now=now),
            step="send",
            transfers=[
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=source,
                    credit_account_id=target,
                    asset=offered.code,
                    amount_minor=amount_minor,
                    reason_code="p2p_send",
                    reference=reference,
                )
            ],
            now=now,
        )
    except ledger_errors.IdempotencyKeyReused as error:
        # The ledger keys a fresh reference already holds: a reference drawn twice (once
        # in 10^15). Run again, with another.
        raise RetryTransaction() from error
    except ledger_errors.AccountClosed:
        # Nothing moved. The recipient's wallet closed is "cannot receive"; the sender's
        # stays account_closed.
        if ledger_queries.get_account(session, account_id=target).status == AccountStatus.closed:
            raise RecipientCannotReceive() from None
        raise
    operation = new_operation(
        session,
        operations=wallet.operations,
        principal=principal,
        user_id=sender.id,
        kind=SEND.name,
        asset=offered.code,
        amount_minor=amount_minor,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        now=now,
        reference=reference,
        events=("posted",),
        final=True,
        status="completed",
        completed_at=now,
        ledger_group_id=posted.transfers[0].group_id,
        counterparty_user_id=recipient_id,
        note=cleaned_note,
        money_request_id=money_request_id,
    )
    recipient = person(session, recipient_id)
    notify_operation(
        session,
        operations=wallet.operations,
        user_id=recipient_id,
        template="money_received",
        operation=operation,
        now=now,
        sender=mask_name(sender.display_name),
        sender_handle=sender.handle,
    )
    # Every debit tells its owner: a send someone else started (an app, a stolen session)
    # is then noticed at once.
    notify_operation(
        session,
        operations=wallet.operations,
        user_id=sender.id,
        template="money_sent",
        operation=operation,
        now=now,
        recipient=mask_name(recipient.display_name),
        recipient_handle=recipient.handle,
    )
    return OperationResult(operation)


# Money requests --------------------------------------------------------------------------


def request_money(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    payer: str,
    asset: str,
    amount_minor: int,
    note: str | None,
    now: datetime | None = None,
) -> MoneyRequest:
    """Ask another user for an amount; they approve (which sends it) or decline."""
    now = now or utc_now()
    requester_id = principal.wallet_user_id
    offered = wallet.offered(asset)
    cleaned_note = clean_note(wallet, note)
    count_lookup(session, wallet=wallet, principal=principal, now=now)
    user = find_user(session, identity=wallet.identity, identifier=payer)
    if user is None:
        raise RecipientNotFound(recipient=payer.strip()[:64])
    if user.id == requester_id:
        raise MoneyRequestToSelf()
    if user.status != "active":
        raise RecipientCannotReceive()
    most = operation_rules.request_amount_max(
        wallet.settings.wallet_limits, kyc_level=user.kyc_level, asset=offered
    )
    if most is not None and amount_minor > most:
        raise MoneyRequestTooLarge(limit=Money(most, offered))
    request = MoneyRequest(
        requester_id=requester_id,
        payer_id=user.id,
        asset=offered.code,
        amount_minor=amount_minor,
        note=cleaned_note,
        status="open",
        expires_at=now + timedelta(seconds=wallet.settings.money_request_ttl_seconds),
        created_at=now,
    )
    session.add(request)
    session.flush()
    requester = session.get_one(User, requester_id)
    notify_user(
        session,
        identity=wallet.identity,
        user=user,
        template="money_requested",
        data={
            "amount": format_amount(amount_minor, offered, user.locale),
            "requester": mask_name(requester.display_name),
            "requester_handle": requester.handle,
        },
        now=now,
    )
    return request


def _open_request(
    session: Session, *, principal: Principal, request_id: int, as_payer: bool, now: datetime
) -> MoneyRequest:
    party = MoneyRequest.payer_id if as_payer else MoneyRequest.requester_id
    request = session.scalars(
        select(MoneyRequest)
        .where(MoneyRequest.id == request_id, party == principal.wallet_user_id)
        .with_for_update()
    ).first()
    if request is None:
        raise MoneyRequestNotFound()
    if request.status != "open":
        raise MoneyRequestNotOpen(status=request.status)
    if request.expires_at <= now:
        raise MoneyRequestExpired()
    return request


def pay_request(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    request_id: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Approve a request made of the principal: send the amount asked."""
    now = now or utc_now()
    fingerprint = operation_rules.fingerprint({"kind": "send", "money_request": request_id})
    replayed = replay(
        session,
        operations=wallet.operations,
        user_id=principal.wallet_user_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    if replayed is not None:
        return OperationResult(replayed, replayed=True)
    request = _open_request(
        session, principal=principal, request_id=request_id, as_payer=True, now=now
    )
    result = _send_to(
        session,
        wallet=wallet,
        principal=principal,
        recipient_id=request.requester_id,
        asset=request.asset,
        amount_minor=request.amount_minor,
        note=request.note,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        money_request_id=request.id,
        now=now,
    )
    request.status = "paid"
    request.operation_id = result.operation.id
    request.resolved_at = now
    return result


def answer_request(
    session: Session,
    *,
    principal: Principal,
    request_id: int,
    answer: str,
    now: datetime | None = None,
) -> MoneyRequest:
    """The payer declines, or the requester cancels, an open request."""
    assert answer in ("declined", "cancelled")
    now = now or utc_now()
    request = _open_request(
        session, principal=principal, request_id=request_id, as_payer=answer == "declined", now=now
    )
    request.status = answer
    request.resolved_at = now
    return request


def expire_requests(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Mark open requests past their time as expired (a worker job)."""
    now = now or utc_now()
    query = (
        select(MoneyRequest)
        .where(MoneyRequest.status == "open", MoneyRequest.expires_at <= now)
        .order_by(MoneyRequest.expires_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    expired = list(session.scalars(query))
    for request in expired:
        request.status = "expired"
        request.resolved_at = now
    return len(expired)
