"""HTML pages for money to and from banks: top up and withdraw."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.deps import DatabaseDep, IdentityDep
from purse.errors import PurseError
from purse.funding import queries as funding_queries
from purse.i18n import N_
from purse.identity.context import Identity
from purse.identity.principal import Principal
from purse.operations.service import OperationResult
from purse.wallet import banking, queries
from purse.wallet.api.common import WalletDep
from purse.wallet.context import Wallet
from purse.wallet.kinds import TOP_UP, WITHDRAWAL
from purse.wallet.pages.common import (
    amount_from_form,
    money_summary,
    new_key,
    to_receipt,
    wallet_page,
    with_step_up,
)
from purse.web.views import signed_in_principal

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]


def _funding_page(
    request: Request,
    database: Database,
    wallet: Wallet,
    principal: Principal,
    mode: str,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    user_id = principal.wallet_user_id
    sources, found = database.run(
        lambda session: (
            funding_queries.funding_sources(session, user_id=user_id),
            queries.balances(session, wallet=wallet, user_id=user_id),
        ),
        write=False,
    )
    return wallet_page(
        request,
        database,
        wallet,
        "funding.html",
        nav="home",
        status_code=status_code,
        mode=mode,
        error=error,
        sources=sources,
        balances=found,
        form=form or {"funding_source_id": "", "amount": "", "currency": "CNY"},
        idempotency_key=new_key(),
    )


@router.get("/top-up", response_class=HTMLResponse)
def top_up_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    principal = signed_in_principal(request, database)
    return _funding_page(request, database, wallet, principal, TOP_UP.name)


@router.get("/withdraw", response_class=HTMLResponse)
def withdraw_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    principal = signed_in_principal(request, database)
    return _funding_page(request, database, wallet, principal, WITHDRAWAL.name)


def _start(
    request: Request,
    database: Database,
    identity: Identity,
    wallet: Wallet,
    mode: str,
    form: dict[str, str],
    *,
    csrf_token: str,
    idempotency_key: str,
    password: str,
    second_factor: str,
) -> Response:
    begin = banking.start_top_up if mode == TOP_UP.name else banking.start_withdrawal
    funding_source_id, amount, currency = (
        form["funding_source_id"],
        form["amount"],
        form["currency"],
    )

    def start(principal: Principal) -> OperationResult:
        asset, amount_minor = amount_from_form(request, wallet, amount, currency)
        source_id = int(funding_source_id) if funding_source_id.isdigit() else 0
        result = database.run(
            lambda session: begin(
                session,
                wallet=wallet,
                principal=principal,
                funding_source_id=source_id,
                asset=asset,
                amount_minor=amount_minor,
                idempotency_key=idempotency_key,
            )
        )
        banking.submit_if_unsent(wallet, result.operation)
        return result

    return with_step_up(
        request,
        database,
        identity,
        csrf_token=csrf_token,
        password=password,
        second_factor=second_factor,
        action="/top-up" if mode == TOP_UP.name else "/withdraw",
        fields={**form, "idempotency_key": idempotency_key},
        nav="home",
        run=start,
        summary=money_summary(request, wallet, N_("Withdraw {amount}"), amount, currency),
        then=lambda result: to_receipt(result, "started"),
        again=lambda error: _funding_page(
            request,
            database,
            wallet,
            signed_in_principal(request, database),
            mode,
            status_code=error.status,
            error=error,
            form=form,
        ),
    )


@router.post("/top-up", response_class=HTMLResponse)
def top_up(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    funding_source_id: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    idempotency_key: Field = "",
    password: Field = "",
    second_factor: Field = "",
) -> Response:
    return _start(
        request,
        database,
        identity,
        wallet,
        TOP_UP.name,
        {"funding_source_id": funding_source_id, "amount": amount, "currency": currency},
        csrf_token=csrf_token,
        idempotency_key=idempotency_key,
        password=password,
        second_factor=second_factor,
    )


@router.post("/withdraw", response_class=HTMLResponse)
def withdraw(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    funding_source_id: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    idempotency_key: Field = "",
    password: Field = "",
    second_factor: Field = "",
) -> Response:
    return _start(
        request,
        database,
        identity,
        wallet,
        WITHDRAWAL.name,
        {"funding_source_id": funding_source_id, "amount": amount, "currency": currency},
        csrf_token=csrf_token,
        idempotency_key=idempotency_key,
        password=password,
        second_factor=second_factor,
    )
