"""JSON routes for converting between currencies: rates, quotes, conversions."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from purse.errors import ValidationFailed
from purse.operations.schemas import Money, OperationRead
from purse.wallet import conversion
from purse.wallet import schemas as s
from purse.wallet.api.common import PREFIX, KeyDep, PrincipalDep, WalletDep, amount_of, answer_now

router = APIRouter(prefix=PREFIX, tags=["wallet"])


@router.get("/fx-rates", response_model=list[s.FxRateRead])
def list_fx_rates(wallet: WalletDep, principal: PrincipalDep) -> list[s.FxRateRead]:
    """The operator's mid rates; quotes add the spread."""
    rows = wallet.database.run(conversion.rates, write=False)
    return [
        s.FxRateRead(base=r.base_asset, quote=r.quote_asset, rate=r.rate, updated_at=r.updated_at)
        for r in rows
    ]


@router.post("/quotes", status_code=status.HTTP_201_CREATED, response_model=s.QuoteRead)
def create_quote(body: s.QuoteCreate, wallet: WalletDep, principal: PrincipalDep) -> s.QuoteRead:
    """A price for a conversion, good until `expires_at`; an expired quote is refused."""
    if body.amount.currency.upper() != body.from_currency.upper():
        raise ValidationFailed(detail="amount.currency must be from_currency")
    asset, amount_minor = amount_of(wallet, body.amount)
    found = wallet.database.run(
        lambda session: conversion.quote(
            session,
            wallet=wallet,
            principal=principal,
            from_asset=asset,
            to_asset=body.to_currency.upper(),
            amount_minor=amount_minor,
        )
    )
    return s.QuoteRead(
        id=found.id,
        sell=Money.of(found.from_amount_minor, found.from_asset, wallet.assets),
        buy=Money.of(found.to_amount_minor, found.to_asset, wallet.assets),
        rate=found.rate,
        mid_rate=found.mid_rate,
        spread=Money.of(found.spread_minor, found.to_asset, wallet.assets),
        expires_at=found.expires_at,
    )


@router.post("/conversions", status_code=status.HTTP_201_CREATED, response_model=OperationRead)
async def create_conversion(
    request: Request,
    response: Response,
    body: s.ConversionCreate,
    wallet: WalletDep,
    principal: PrincipalDep,
    key: KeyDep,
) -> OperationRead:
    """Convert at a quote's price, as one atomic ledger group."""
    return await answer_now(
        request,
        response,
        wallet,
        principal,
        lambda session: conversion.convert(
            session,
            wallet=wallet,
            principal=principal,
            quote_id=body.quote_id,
            idempotency_key=key,
        ),
    )
