"""Wallet use cases between users and between currencies, and the funding sources behind them.

Each runs in the caller's DB transaction (``database.run``) and either completes
or raises, leaving nothing behind. Idempotency and lock order are described in
:mod:`purse.wallet.operations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from purse.crypto import FieldCipher
from purse.funding.provider import BankAccountDetails, CardDetails
from purse.identity import service as identity_service
from purse.identity.context import notify_user
from purse.identity.models import User
from purse.ledger import errors as ledger_errors
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.rules import AccountStatus, GroupRequest, TransferKind, TransferRequest
from purse.models import utc_now
from purse.money.amounts import format_amount
from purse.wallet import rules
from purse.wallet.errors import (
    ConversionSameAsset,
    FundingSourceLimitReached,
    FundingSourceNotFound,
    FxRateUnavailable,
    MoneyRequestExpired,
    MoneyRequestNotFound,
    MoneyRequestNotOpen,
    MoneyRequestToSelf,
    QuoteExpired,
    QuoteNotFound,
    QuoteUsed,
    RecipientCannotReceive,
    RecipientIsSelf,
    RecipientNotFound,
)
from purse.wallet.models import (
    FundingSource,
    FxQuote,
    FxRate,
    MoneyRequest,
)
from purse.wallet.operations import (
    FX_POSITION,
    FX_REVENUE,
    LEDGER_SCOPE,
    OperationResult,
    account_id,
    add_event,
    check_limits,
    clean_note,
    lock_user,
    new_operation,
    notify_operation,
    replay,
    system_account,
    user_owner,
)

if TYPE_CHECKING:
    from purse.wallet.context import Caller, Wallet

log = structlog.get_logger(__name__)

FUNDING_SOURCES_MAX = 10
HOLDER_NAME_CONTEXT = "wallet_funding_sources.holder_name"


# Sending money ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    handle: str
    masked_name: str


def find_recipient(session: Session, *, wallet: Wallet, caller: Caller, to: str) -> Recipient:
    """Who a phone number, email or handle belongs to, shown masked before money is sent."""
    user = identity_service.find_user(session, identity=wallet.identity, identifier=to)
    if user is None:
        raise RecipientNotFound(recipient=to.strip()[:64])
    if user.id == caller.user_id:
        raise RecipientIsSelf()
    if user.status != "active":
        raise RecipientCannotReceive()
    return Recipient(
        user_id=user.id, handle=user.handle, masked_name=rules.mask_name(user.display_name)
    )


def send(
    session: Session,
    *,
    wallet: Wallet,
    caller: Caller,
    to: str,
    asset: str,
    amount_minor: int,
    note: str | None,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Send money to another user by phone, email or handle, at once."""
    fingerprint = rules.fingerprint(
        {
            "kind": "send",
            "to": to.strip().lower(),
            "asset": asset,
            "amount": amount_minor,
            "note": note,
        }
    )
    replayed = replay(
        session, caller=caller, idempotency_key=idempotency_key, fingerprint=fingerprint
    )
    if replayed is not None:
        return OperationResult(replayed, replayed=True)
    recipient = find_recipient(session, wallet=wallet, caller=caller, to=to)
    return _send_to(
        session,
        wallet=wallet,
        caller=caller,
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
    caller: Caller,
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
    sender = lock_user(session, caller.user_id)
    check_limits(
        session, wallet=wallet, user=sender, asset=offered, amount_minor=amount_minor, now=now
    )
    source = account_id(session, owner=user_owner(sender.id), asset=offered.code, create=False)
    if source is None:
        raise ledger_errors.InsufficientFunds()
    target = account_id(session, owner=user_owner(recipient_id), asset=offered.code)
    assert target is not None
    if ledger_queries.get_account(session, account_id=target).status == AccountStatus.closed:
        raise RecipientCannotReceive()
    operation = new_operation(
        session,
        caller=caller,
        kind="send",
        asset=offered.code,
        amount_minor=amount_minor,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        now=now,
        counterparty_user_id=recipient_id,
        note=cleaned_note,
        money_request_id=money_request_id,
    )
    record = ledger.submit_transfer(
        session,
        TransferRequest(
            kind=TransferKind.posted,
            debit_account_id=source,
            credit_account_id=target,
            asset=offered.code,
            amount_minor=amount_minor,
            reason_code="p2p_send",
            reference=operation.reference,
        ),
        initiator=caller.initiator(),
        idempotency_scope=LEDGER_SCOPE,
        idempotency_key=f"{operation.reference}:send",
        now=now,
    )
    operation.ledger_group_id = record.group_id
    operation.status = "completed"
    operation.completed_at = now
    add_event(session, operation, "posted", now=now)
    notify_operation(
        session,
        wallet=wallet,
        user_id=recipient_id,
        template="money_received",
        operation=operation,
        now=now,
        sender=rules.mask_name(sender.display_name),
        sender_handle=sender.handle,
    )
    return OperationResult(operation)


# Money requests --------------------------------------------------------------------------


def request_money(
    session: Session,
    *,
    wallet: Wallet,
    caller: Caller,
    payer: str,
    asset: str,
    amount_minor: int,
    note: str | None,
    now: datetime | None = None,
) -> MoneyRequest:
    """Ask another user for an amount; they approve (which sends it) or decline."""
    now = now or utc_now()
    offered = wallet.offered(asset)
    cleaned_note = clean_note(wallet, note)
    user = identity_service.find_user(session, identity=wallet.identity, identifier=payer)
    if user is None:
        raise RecipientNotFound(recipient=payer.strip()[:64])
    if user.id == caller.user_id:
        raise MoneyRequestToSelf()
    if user.status != "active":
        raise RecipientCannotReceive()
    request = MoneyRequest(
        requester_id=caller.user_id,
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
    requester = session.get_one(User, caller.user_id)
    notify_user(
        session,
        identity=wallet.identity,
        user=user,
        template="money_requested",
        data={
            "amount": format_amount(amount_minor, offered, user.locale),
            "requester": rules.mask_name(requester.display_name),
            "requester_handle": requester.handle,
        },
        now=now,
    )
    return request


def _open_request(
    session: Session, *, caller: Caller, request_id: int, as_payer: bool, now: datetime
) -> MoneyRequest:
    party = MoneyRequest.payer_id if as_payer else MoneyRequest.requester_id
    request = session.scalars(
        select(MoneyRequest)
        .where(MoneyRequest.id == request_id, party == caller.user_id)
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
    caller: Caller,
    request_id: int,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Approve a request made of the caller: send the amount asked."""
    now = now or utc_now()
    fingerprint = rules.fingerprint({"kind": "send", "money_request": request_id})
    replayed = replay(
        session, caller=caller, idempotency_key=idempotency_key, fingerprint=fingerprint
    )
    if replayed is not None:
        return OperationResult(replayed, replayed=True)
    request = _open_request(session, caller=caller, request_id=request_id, as_payer=True, now=now)
    result = _send_to(
        session,
        wallet=wallet,
        caller=caller,
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
    caller: Caller,
    request_id: int,
    answer: str,
    now: datetime | None = None,
) -> MoneyRequest:
    """The payer declines, or the requester cancels, an open request."""
    assert answer in ("declined", "cancelled")
    now = now or utc_now()
    request = _open_request(
        session, caller=caller, request_id=request_id, as_payer=answer == "declined", now=now
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


# Conversion ------------------------------------------------------------------------------


def set_rate(
    session: Session,
    *,
    base_asset: str,
    quote_asset: str,
    rate: str,
    updated_by: str,
    now: datetime | None = None,
) -> FxRate:
    """The operator's mid rate: units of ``quote_asset`` for one ``base_asset``."""
    value = rules.parse_rate(rate)
    if base_asset == quote_asset:
        raise ConversionSameAsset()
    row = session.get(FxRate, (base_asset, quote_asset))
    if row is None:
        row = FxRate(base_asset=base_asset, quote_asset=quote_asset)
        session.add(row)
    row.rate = rules.rate_text(value, places=18)
    row.updated_at = now or utc_now()
    row.updated_by = updated_by
    session.flush()
    return row


def mid_rate(session: Session, *, from_asset: str, to_asset: str) -> Fraction:
    direct = session.get(FxRate, (from_asset, to_asset))
    if direct is not None:
        return rules.parse_rate(direct.rate)
    inverse = session.get(FxRate, (to_asset, from_asset))
    if inverse is not None:
        return rules.invert_rate(rules.parse_rate(inverse.rate))
    raise FxRateUnavailable(from_asset=from_asset, to_asset=to_asset)


def quote(
    session: Session,
    *,
    wallet: Wallet,
    caller: Caller,
    from_asset: str,
    to_asset: str,
    amount_minor: int,
    now: datetime | None = None,
) -> FxQuote:
    """A price for converting ``amount_minor`` of one asset, good until it expires."""
    import secrets

    now = now or utc_now()
    source, target = wallet.offered(from_asset), wallet.offered(to_asset)
    if source.code == target.code:
        raise ConversionSameAsset()
    mid = mid_rate(session, from_asset=source.code, to_asset=target.code)
    price = rules.price_conversion(
        amount_minor=amount_minor,
        source=source,
        target=target,
        mid_rate=mid,
        spread_bps=wallet.settings.fx_spread_bps,
    )
    row = FxQuote(
        id="q_" + secrets.token_urlsafe(16),
        user_id=caller.user_id,
        from_asset=source.code,
        to_asset=target.code,
        from_amount_minor=amount_minor,
        to_amount_minor=price.to_amount_minor,
        spread_minor=price.spread_minor,
        mid_rate=rules.rate_text(mid, places=12),
        rate=rules.rate_text(price.rate),
        expires_at=now + timedelta(seconds=wallet.settings.fx_quote_ttl_seconds),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def convert(
    session: Session,
    *,
    wallet: Wallet,
    caller: Caller,
    quote_id: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Convert at a quoted price, as one atomic group through the FX accounts.

    An expired quote is refused, never re-priced: the user agreed to that price only.
    """
    now = now or utc_now()
    fingerprint = rules.fingerprint({"kind": "convert", "quote": quote_id})
    replayed = replay(
        session, caller=caller, idempotency_key=idempotency_key, fingerprint=fingerprint
    )
    if replayed is not None:
        return OperationResult(replayed, replayed=True)
    found = session.scalars(
        select(FxQuote)
        .where(FxQuote.id == quote_id, FxQuote.user_id == caller.user_id)
        .with_for_update()
    ).first()
    if found is None:
        raise QuoteNotFound()
    if found.operation_id is not None:
        raise QuoteUsed()
    if found.expires_at <= now:
        raise QuoteExpired()
    owner = user_owner(caller.user_id)
    source = account_id(session, owner=owner, asset=found.from_asset, create=False)
    if source is None:
        raise ledger_errors.InsufficientFunds()
    target = account_id(session, owner=owner, asset=found.to_asset)
    position_from = system_account(session, kind=FX_POSITION, asset=found.from_asset)
    position_to = system_account(session, kind=FX_POSITION, asset=found.to_asset)
    operation = new_operation(
        session,
        caller=caller,
        kind="convert",
        asset=found.from_asset,
        amount_minor=found.from_amount_minor,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        now=now,
        to_asset=found.to_asset,
        to_amount_minor=found.to_amount_minor,
        rate=found.rate,
    )
    # fee_minor of a conversion is the spread, in the target asset.
    operation.fee_minor = found.spread_minor
    transfers = [
        TransferRequest(
            debit_account_id=source,
            credit_account_id=position_from,
            asset=found.from_asset,
            amount_minor=found.from_amount_minor,
            reason_code="fx_sell",
            reference=operation.reference,
        ),
        TransferRequest(
            debit_account_id=position_to,
            credit_account_id=target,
            asset=found.to_asset,
            amount_minor=found.to_amount_minor,
            reason_code="fx_buy",
            reference=operation.reference,
        ),
    ]
    if found.spread_minor:
        transfers.append(
            TransferRequest(
                debit_account_id=position_to,
                credit_account_id=system_account(session, kind=FX_REVENUE, asset=found.to_asset),
                asset=found.to_asset,
                amount_minor=found.spread_minor,
                reason_code="fx_spread",
                reference=operation.reference,
            )
        )
    result = ledger.submit_one(
        session,
        group=GroupRequest(
            transfers=tuple(transfers),
            initiator=caller.initiator(),
            idempotency_scope=LEDGER_SCOPE,
            idempotency_key=f"{operation.reference}:convert",
        ),
        now=now,
    )
    found.operation_id = operation.id
    operation.ledger_group_id = result.transfers[0].group_id
    operation.status = "completed"
    operation.completed_at = now
    add_event(session, operation, "posted", now=now)
    return OperationResult(operation)


# Funding sources -------------------------------------------------------------------------


def add_funding_source(
    session: Session,
    *,
    wallet: Wallet,
    caller: Caller,
    card: CardDetails | None = None,
    bank_account: BankAccountDetails | None = None,
    now: datetime | None = None,
) -> FundingSource:
    """Link a card or bank account: the provider tokenizes it; purse keeps no full number.

    The provider's tokenization runs inside this transaction only because the
    simulator does it without a network call; a real provider tokenizes in the
    browser (hosted fields) and purse receives just the token.
    """
    assert (card is None) != (bank_account is None)
    now = now or utc_now()
    count = session.scalar(
        select(func.count())
        .select_from(FundingSource)
        .where(FundingSource.user_id == caller.user_id, FundingSource.status == "active")
    )
    if int(count or 0) >= FUNDING_SOURCES_MAX:
        raise FundingSourceLimitReached(count_max=FUNDING_SOURCES_MAX)
    provider = wallet.provider(wallet.default_provider)
    instrument = (
        provider.tokenize_card(card)
        if card is not None
        else provider.tokenize_bank_account(bank_account)  # type: ignore[arg-type]
    )
    holder = card.holder_name if card is not None else bank_account.holder_name  # type: ignore[union-attr]
    holder = " ".join(holder.split())[:64] or "-"
    source = FundingSource(
        user_id=caller.user_id,
        kind="card" if card is not None else "bank_account",
        provider=provider.name,
        provider_token=instrument.token,
        brand=instrument.brand,
        last4=instrument.last4,
        holder_name_encrypted=wallet.identity.cipher.encrypt(holder, context=HOLDER_NAME_CONTEXT),
        expiry_month=instrument.expiry_month,
        expiry_year=instrument.expiry_year,
        status="active",
        created_at=now,
    )
    session.add(source)
    session.flush()
    return source


def holder_name(cipher: FieldCipher, source: FundingSource) -> str:
    return cipher.decrypt(source.holder_name_encrypted, context=HOLDER_NAME_CONTEXT)


def get_funding_source(
    session: Session, *, caller: Caller, funding_source_id: int
) -> FundingSource:
    """One of the caller's active cards or accounts; anyone else's is "not found"."""
    source = session.scalars(
        select(FundingSource).where(
            FundingSource.id == funding_source_id,
            FundingSource.user_id == caller.user_id,
            FundingSource.status == "active",
        )
    ).first()
    if source is None:
        raise FundingSourceNotFound()
    return source


def remove_funding_source(
    session: Session, *, caller: Caller, funding_source_id: int, now: datetime | None = None
) -> FundingSource:
    """Unlink a card or account; past operations keep naming it."""
    source = get_funding_source(session, caller=caller, funding_source_id=funding_source_id)
    source.status = "removed"
    source.removed_at = now or utc_now()
    return source
