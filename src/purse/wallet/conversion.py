"""Currency conversion: the operator's mid rates, quotes that expire, and converting at one.

A conversion posts one atomic ledger group through the FX accounts: the user's
source currency to the FX position, the FX position to the user's target
currency, and the spread to FX revenue. An expired quote is refused, never
re-priced: the user agreed to that price only.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import Session

from purse.identity.models import User
from purse.identity.principal import Principal
from purse.ledger import errors as ledger_errors
from purse.ledger.rules import TransferKind, TransferRequest
from purse.models import utc_now
from purse.money.amounts import format_amount
from purse.operations import rules as operation_rules
from purse.operations.accounts import account_id, system_account, user_owner
from purse.operations.service import (
    OperationResult,
    add_event,
    new_operation,
    notify_operation,
    post,
    replay,
)
from purse.wallet import rules
from purse.wallet.context import Wallet
from purse.wallet.errors import (
    ConversionSameAsset,
    FxRateUnavailable,
    QuoteExpired,
    QuoteNotFound,
    QuoteUsed,
)
from purse.wallet.kinds import CONVERT
from purse.wallet.models import FxQuote, FxRate

# System accounts of conversions, one per asset. They may go below zero.
FX_POSITION = "fx_position"  # the currency purse bought and sold in conversions
FX_REVENUE = "fx_revenue"  # the spread purse earned on conversions


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


def rates(session: Session) -> list[FxRate]:
    """Every mid rate the operator set."""
    return list(session.scalars(select(FxRate).order_by(FxRate.base_asset, FxRate.quote_asset)))


def quote(
    session: Session,
    *,
    wallet: Wallet,
    principal: Principal,
    from_asset: str,
    to_asset: str,
    amount_minor: int,
    now: datetime | None = None,
) -> FxQuote:
    """A price for converting ``amount_minor`` of one asset, good until it expires."""
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
        user_id=principal.wallet_user_id,
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
    principal: Principal,
    quote_id: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> OperationResult:
    """Convert at a quoted price, as one atomic group through the FX accounts."""
    now = now or utc_now()
    user_id = principal.wallet_user_id
    fingerprint = operation_rules.fingerprint({"kind": "convert", "quote": quote_id})
    replayed = replay(
        session,
        operations=wallet.operations,
        user_id=user_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    if replayed is not None:
        return OperationResult(replayed, replayed=True)
    found = session.scalars(
        select(FxQuote).where(FxQuote.id == quote_id, FxQuote.user_id == user_id).with_for_update()
    ).first()
    if found is None:
        raise QuoteNotFound()
    if found.operation_id is not None:
        raise QuoteUsed()
    if found.expires_at <= now:
        raise QuoteExpired()
    owner = user_owner(user_id)
    source = account_id(session, owner=owner, asset=found.from_asset, create=False)
    if source is None:
        raise ledger_errors.InsufficientFunds()
    target = account_id(session, owner=owner, asset=found.to_asset)
    assert target is not None
    position_from = system_account(session, kind=FX_POSITION, asset=found.from_asset)
    position_to = system_account(session, kind=FX_POSITION, asset=found.to_asset)
    operation = new_operation(
        session,
        operations=wallet.operations,
        principal=principal,
        user_id=user_id,
        kind=CONVERT.name,
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
            kind=TransferKind.posted,
            debit_account_id=source,
            credit_account_id=position_from,
            asset=found.from_asset,
            amount_minor=found.from_amount_minor,
            reason_code="fx_sell",
            reference=operation.reference,
        ),
        TransferRequest(
            kind=TransferKind.posted,
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
                kind=TransferKind.posted,
                debit_account_id=position_to,
                credit_account_id=system_account(session, kind=FX_REVENUE, asset=found.to_asset),
                asset=found.to_asset,
                amount_minor=found.spread_minor,
                reason_code="fx_spread",
                reference=operation.reference,
            )
        )
    result = post(
        session,
        operations=wallet.operations,
        operation=operation,
        step="convert",
        transfers=transfers,
        now=now,
    )
    found.operation_id = operation.id
    operation.ledger_group_id = result.transfers[0].group_id
    operation.status = "completed"
    operation.completed_at = now
    add_event(session, operation, "posted", now=now)
    user = session.get_one(User, user_id)
    notify_operation(
        session,
        operations=wallet.operations,
        user_id=user_id,
        template="money_converted",
        operation=operation,
        now=now,
        converted=format_amount(
            found.to_amount_minor, wallet.assets.get(found.to_asset), user.locale
        ),
    )
    return OperationResult(operation)
