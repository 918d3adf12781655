"""Linking and unlinking cards and bank accounts: the provider tokenizes; purse keeps no number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from purse.crypto import FieldCipher
from purse.funding.context import Funding
from purse.funding.errors import FundingSourceLimitReached, FundingSourceNotFound
from purse.funding.models import FundingSource
from purse.funding.provider import BankAccountDetails, CardDetails
from purse.identity.principal import Principal
from purse.models import utc_now

FUNDING_SOURCES_MAX = 10
# The encryption context of the holder name: fixed forever (it is part of every stored
# ciphertext), so it keeps the table's first name.
HOLDER_NAME_CONTEXT = "wallet_funding_sources.holder_name"


def add_funding_source(
    session: Session,
    *,
    funding: Funding,
    cipher: FieldCipher,
    principal: Principal,
    card: CardDetails | None = None,
    bank_account: BankAccountDetails | None = None,
    now: datetime | None = None,
) -> FundingSource:
    """Link a card or bank account to the principal's wallet.

    The provider's tokenization runs inside this transaction only because the
    simulator does it without a network call; a real provider tokenizes in the
    browser (hosted fields) and purse receives just the token.
    """
    assert (card is None) != (bank_account is None)
    now = now or utc_now()
    user_id = principal.wallet_user_id
    count = session.scalar(
        select(func.count())
        .select_from(FundingSource)
        .where(FundingSource.user_id == user_id, FundingSource.status == "active")
    )
    if int(count or 0) >= FUNDING_SOURCES_MAX:
        raise FundingSourceLimitReached(count_max=FUNDING_SOURCES_MAX)
    provider = funding.provider(funding.default_provider)
    if card is not None:
        instrument = provider.tokenize_card(card)
        holder = card.holder_name
    else:
        assert bank_account is not None
        instrument = provider.tokenize_bank_account(bank_account)
        holder = bank_account.holder_name
    holder = " ".join(holder.split())[:64] or "-"
    source = FundingSource(
        user_id=user_id,
        kind="card" if card is not None else "bank_account",
        provider=provider.name,
        provider_token=instrument.token,
        brand=instrument.brand,
        last4=instrument.last4,
        holder_name_encrypted=cipher.encrypt(holder, context=HOLDER_NAME_CONTEXT),
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
    session: Session, *, principal: Principal, funding_source_id: int
) -> FundingSource:
    """One of the principal's active cards or accounts; anyone else's is "not found"."""
    source = session.scalars(
        select(FundingSource).where(
            FundingSource.id == funding_source_id,
            FundingSource.user_id == principal.wallet_user_id,
            FundingSource.status == "active",
        )
    ).first()
    if source is None:
        raise FundingSourceNotFound()
    return source


def remove_funding_source(
    session: Session, *, principal: Principal, funding_source_id: int, now: datetime | None = None
) -> FundingSource:
    """Unlink a card or account; past operations keep naming it."""
    source = get_funding_source(session, principal=principal, funding_source_id=funding_source_id)
    source.status = "removed"
    source.removed_at = now or utc_now()
    return source
