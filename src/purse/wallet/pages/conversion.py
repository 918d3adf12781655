"""HTML pages for converting between currencies: a quote, then converting at it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.deps import DatabaseDep
from purse.errors import PurseError
from purse.identity.principal import Principal
from purse.wallet import conversion, queries
from purse.wallet.api.common import WalletDep
from purse.wallet.context import Wallet
from purse.wallet.models import FxQuote
from purse.wallet.pages.common import amount_from_form, new_key, to_receipt, wallet_page
from purse.web.forms import form_action
from purse.web.views import form_principal, signed_in_principal

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]


def _convert_page(
    request: Request,
    database: Database,
    wallet: Wallet,
    principal: Principal,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    found = database.run(
        lambda session: queries.balances(session, wallet=wallet, user_id=principal.wallet_user_id),
        write=False,
    )
    return wallet_page(
        request,
        database,
        wallet,
        "convert.html",
        nav="home",
        status_code=status_code,
        error=error,
        balances=found,
        form=form or {"amount": "", "currency": "CNY", "to_currency": "USD"},
    )


@router.get("/convert", response_class=HTMLResponse)
def convert_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    return _convert_page(request, database, wallet, signed_in_principal(request, database))


@router.post("/convert/quote", response_class=HTMLResponse)
def convert_quote(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    to_currency: Field = "USD",
) -> Response:
    principal = form_principal(request, database, csrf_token)
    form = {"amount": amount, "currency": currency, "to_currency": to_currency}

    def price() -> FxQuote:
        asset, amount_minor = amount_from_form(request, wallet, amount, currency)
        return database.run(
            lambda session: conversion.quote(
                session,
                wallet=wallet,
                principal=principal,
                from_asset=asset,
                to_asset=to_currency,
                amount_minor=amount_minor,
            )
        )

    return form_action(
        price,
        then=lambda quote: wallet_page(
            request,
            database,
            wallet,
            "convert_quote.html",
            nav="home",
            quote=quote,
            idempotency_key=new_key(),
        ),
        again=lambda error: _convert_page(
            request, database, wallet, principal, status_code=error.status, error=error, form=form
        ),
    )


@router.post("/convert/confirm", response_class=HTMLResponse)
def convert_confirm(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    quote_id: Field = "",
    idempotency_key: Field = "",
) -> Response:
    principal = form_principal(request, database, csrf_token)
    return form_action(
        lambda: database.run(
            lambda session: conversion.convert(
                session,
                wallet=wallet,
                principal=principal,
                quote_id=quote_id,
                idempotency_key=idempotency_key,
            )
        ),
        then=lambda result: to_receipt(result, "converted"),
        again=lambda error: _convert_page(
            request, database, wallet, principal, status_code=error.status, error=error
        ),
    )
