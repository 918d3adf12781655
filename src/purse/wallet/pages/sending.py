"""HTML pages for money between people: send (in two steps), requests, receive.

Sending takes two steps: the review page shows the recipient's masked name
before the money goes, so a mistyped phone number is caught by a person.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.deps import DatabaseDep, IdentityDep, IdPath
from purse.errors import NotFound, PurseError
from purse.i18n import N_, translate
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.operations.service import OperationResult
from purse.wallet import queries, service
from purse.wallet.api.common import WalletDep
from purse.wallet.api.sending import look_up, payment_link, qr_svg
from purse.wallet.context import Wallet
from purse.wallet.pages.common import (
    amount_from_form,
    money_summary,
    new_key,
    to_receipt,
    wallet_page,
    with_step_up,
)
from purse.web.forms import form_action
from purse.web.templating import page_locale
from purse.web.views import form_principal, redirect, signed_in_principal

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]
ASKED = N_("Request sent. They will see it in purse.")


# Send -------------------------------------------------------------------------------------


@router.get("/send", response_class=HTMLResponse)
def send_form(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    to: Annotated[str, Query(max_length=320)] = "",
    amount: Annotated[str, Query(max_length=40)] = "",
    currency: Annotated[str, Query(max_length=12)] = "CNY",
    note: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    signed_in_principal(request, database)
    form = {"to": to, "amount": amount, "currency": currency.upper(), "note": note}
    return wallet_page(request, database, wallet, "send.html", nav="send", form=form)


@router.get("/send/recipient", response_class=HTMLResponse)
def recipient_preview(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    to: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    """The masked name of who the typed contact belongs to (an htmx fragment)."""
    principal = signed_in_principal(request, database)
    found, error = None, None
    if to.strip():
        try:
            found = look_up(wallet, principal, to)
        except PurseError as refused:
            error = refused
    return wallet_page(
        request, database, wallet, "_recipient.html", nav="send", found=found, problem=error
    )


def _send_again(
    request: Request, database: Database, wallet: Wallet, form: dict[str, str]
) -> Callable[[PurseError], Response]:
    def again(error: PurseError) -> Response:
        return wallet_page(
            request,
            database,
            wallet,
            "send.html",
            nav="send",
            status_code=error.status,
            error=error,
            form=form,
        )

    return again


@router.post("/send", response_class=HTMLResponse)
def send_review(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    to: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    note: Field = "",
) -> Response:
    """Step one: check everything, and show who the money goes to before it goes."""
    principal = form_principal(request, database, csrf_token)
    form = {"to": to, "amount": amount, "currency": currency, "note": note}

    def check() -> tuple[str, int, service.Recipient]:
        asset, amount_minor = amount_from_form(request, wallet, amount, currency)
        return asset, amount_minor, look_up(wallet, principal, to)

    return form_action(
        check,
        then=lambda checked: wallet_page(
            request,
            database,
            wallet,
            "send_confirm.html",
            nav="send",
            form=form,
            recipient=checked[2],
            asset=checked[0],
            amount_minor=checked[1],
            idempotency_key=new_key(),
        ),
        again=_send_again(request, database, wallet, form),
    )


@router.post("/send/confirm", response_class=HTMLResponse)
def send_confirm(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    to: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    note: Field = "",
    idempotency_key: Field = "",
    password: Field = "",
    second_factor: Field = "",
) -> Response:
    """Step two: send. The form's key makes a second click replay the first.

    A large amount needs the password confirmed again first (then the same form runs).
    """
    form = {"to": to, "amount": amount, "currency": currency, "note": note}

    def send(principal: Principal) -> OperationResult:
        asset, amount_minor = amount_from_form(request, wallet, amount, currency)
        return database.run(
            lambda session: service.send(
                session,
                wallet=wallet,
                principal=principal,
                to=to,
                asset=asset,
                amount_minor=amount_minor,
                note=note or None,
                idempotency_key=idempotency_key,
            )
        )

    return with_step_up(
        request,
        database,
        identity,
        csrf_token=csrf_token,
        password=password,
        second_factor=second_factor,
        action="/send/confirm",
        fields={**form, "idempotency_key": idempotency_key},
        nav="send",
        run=send,
        then=lambda result: to_receipt(result, "sent"),
        again=_send_again(request, database, wallet, form),
        summary=money_summary(
            request, wallet, N_("Send {amount} to {to}"), amount, currency, to=to
        ),
    )


@router.get("/pay/{handle}")
def pay_link(
    handle: Annotated[str, Path(max_length=64)],
    amount: Annotated[str, Query(max_length=40)] = "",
    currency: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    """A payment link from someone's QR code opens the send page with them filled in."""
    query = {"to": handle[:32], "amount": amount, "currency": currency}
    return redirect("/send?" + urlencode({k: v for k, v in query.items() if v}))


# Requests ---------------------------------------------------------------------------------


def _requests_page(
    request: Request,
    database: Database,
    wallet: Wallet,
    principal: Principal,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    found = database.run(
        lambda session: queries.money_requests(
            session, user_id=principal.wallet_user_id, now=utc_now()
        ),
        write=False,
    )
    return wallet_page(
        request,
        database,
        wallet,
        "request.html",
        nav="home",
        status_code=status_code,
        error=error,
        form=form or {"payer": "", "amount": "", "currency": "CNY", "note": ""},
        incoming=[r for r in found if r.direction == "incoming"],
        outgoing=[r for r in found if r.direction == "outgoing"],
        idempotency_key=new_key(),
        notice=notice,
    )


@router.get("/request", response_class=HTMLResponse)
def request_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    principal = signed_in_principal(request, database)
    notice = translate(ASKED, page_locale(request)) if request.query_params.get("asked") else None
    return _requests_page(request, database, wallet, principal, notice=notice)


@router.post("/request", response_class=HTMLResponse)
def request_money(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    payer: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    note: Field = "",
) -> Response:
    principal = form_principal(request, database, csrf_token)
    form = {"payer": payer, "amount": amount, "currency": currency, "note": note}

    def ask() -> object:
        asset, amount_minor = amount_from_form(request, wallet, amount, currency)
        return database.run(
            lambda session: service.request_money(
                session,
                wallet=wallet,
                principal=principal,
                payer=payer,
                asset=asset,
                amount_minor=amount_minor,
                note=note or None,
            )
        )

    return form_action(
        ask,
        then=lambda _request: redirect("/request?asked=1"),
        again=lambda error: _requests_page(
            request, database, wallet, principal, status_code=error.status, error=error, form=form
        ),
    )


@router.post("/requests/{request_id}/pay", response_class=HTMLResponse)
def pay_request(
    request: Request,
    request_id: IdPath,
    database: DatabaseDep,
    identity: IdentityDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    idempotency_key: Field = "",
    password: Field = "",
    second_factor: Field = "",
) -> Response:
    def pay(principal: Principal) -> OperationResult:
        return database.run(
            lambda session: service.pay_request(
                session,
                wallet=wallet,
                principal=principal,
                request_id=request_id,
                idempotency_key=idempotency_key,
            )
        )

    return with_step_up(
        request,
        database,
        identity,
        csrf_token=csrf_token,
        password=password,
        second_factor=second_factor,
        action=f"/requests/{request_id}/pay",
        fields={"idempotency_key": idempotency_key},
        nav="home",
        run=pay,
        then=lambda result: to_receipt(result, "sent"),
        again=lambda error: _requests_page(
            request,
            database,
            wallet,
            signed_in_principal(request, database),
            status_code=error.status,
            error=error,
        ),
    )


_ANSWERS = {"decline": "declined", "cancel": "cancelled"}


@router.post("/requests/{request_id}/{answer}", response_class=HTMLResponse)
def answer_request(
    request: Request,
    request_id: IdPath,
    answer: Annotated[str, Path(max_length=16)],
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
) -> Response:
    principal = form_principal(request, database, csrf_token)
    if answer not in _ANSWERS:
        raise NotFound()
    return form_action(
        lambda: database.run(
            lambda session: service.answer_request(
                session, principal=principal, request_id=request_id, answer=_ANSWERS[answer]
            )
        ),
        then=lambda _request: redirect("/request"),
        again=lambda error: _requests_page(
            request, database, wallet, principal, status_code=error.status, error=error
        ),
    )


# Receive ----------------------------------------------------------------------------------


@router.get("/receive", response_class=HTMLResponse)
def receive(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    principal = signed_in_principal(request, database)
    me = database.run(lambda session: session.get_one(User, principal.wallet_user_id), write=False)
    return wallet_page(
        request,
        database,
        wallet,
        "receive.html",
        nav="home",
        me=me,
        link=payment_link(request, me.handle),
    )


@router.get("/receive/qr.svg")
def receive_qr(request: Request, database: DatabaseDep) -> Response:
    principal = signed_in_principal(request, database)
    handle = database.run(
        lambda session: session.get_one(User, principal.wallet_user_id).handle, write=False
    )
    return Response(
        qr_svg(payment_link(request, handle)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=300"},
    )
