"""HTML pages of the wallet: home, send, request, receive, top-up, withdraw, convert, activity.

Thin adapters like the JSON routes. Every form that moves money carries an
idempotency key made when the form was rendered, so a double click or a
browser retry replays the first result instead of moving money twice. Sending
takes two steps: the review page shows the recipient's masked name before the
money goes, so a mistyped phone number is caught by a person.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from purse.deps import DatabaseDep, IdentityDep, is_recent
from purse.errors import NotFound, PurseError
from purse.funding.provider import BankAccountDetails, CardDetails
from purse.funding.simulator import TEST_CARDS, Simulator
from purse.i18n import translate
from purse.identity import sessions
from purse.identity.models import User
from purse.identity.pages import step_up_page
from purse.models import utc_now
from purse.money.amounts import parse_amount
from purse.wallet import bank, queries, service, statements
from purse.wallet.api import WalletDep, payment_link, qr_svg
from purse.wallet.api import statement_download as api_statement_download
from purse.wallet.context import Caller, Wallet
from purse.wallet.operations import OperationResult
from purse.web.security import check_csrf
from purse.web.templating import page_locale
from purse.web.views import page, redirect, require_signed_in

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]

KIND_LABELS = {
    "top_up": "Top-up",
    "withdrawal": "Withdrawal",
    "send": "Transfer",
    "convert": "Conversion",
}
STATUS_LABELS = {
    "pending": "Pending",
    "completed": "Completed",
    "failed": "Failed",
    "open": "Waiting",
    "paid": "Paid",
    "declined": "Declined",
    "cancelled": "Cancelled",
    "expired": "Expired",
    "queued": "Queued",
    "running": "Preparing",
    "ready": "Ready",
}
EVENT_LABELS = {
    "created": "Created",
    "held": "Money reserved in your wallet",
    "submitted": "Sent to the bank",
    "provider_silent": "The bank has not answered yet; we keep asking",
    "posted": "Completed",
    "voided": "Reserved money released",
    "expired": "Reservation expired and released",
    "failed": "Failed",
    "needs_review": "Passed to support to check",
}
NOTICES = {
    "asked": "Request sent. They will see it in purse.",
    "added": "Linked. You can use it to top up and withdraw.",
}
DESCRIPTIONS = {
    "in": "From {name}",
    "out": "To {name}",
    "top_up": "Top-up from {source}",
    "withdrawal": "Withdrawal to {source}",
    "convert": "{from_asset} to {to_asset}",
}


def _describe(locale: str) -> Any:
    def describe(view: queries.OperationView) -> str:
        if view.kind == "send":
            name = f"@{view.counterparty.handle}" if view.counterparty else "?"
            return translate(DESCRIPTIONS[view.direction], locale).format(name=name)
        if view.kind == "convert":
            return translate(DESCRIPTIONS["convert"], locale).format(
                from_asset=view.asset, to_asset=view.to_asset
            )
        source = view.funding_source
        label = f"{source.brand} ••{source.last4}" if source else "—"
        return translate(DESCRIPTIONS[view.kind], locale).format(source=label)

    return describe


def _current(request: Request, database: DatabaseDep) -> sessions.Authenticated:
    return require_signed_in(request, database)


def _caller(current: sessions.Authenticated) -> Caller:
    return Caller(user_id=current.user_id, session_id=current.session_id, via="web")


def _form_caller(request: Request, database: DatabaseDep, csrf_token: str) -> Caller:
    check_csrf(request, csrf_token)
    return _caller(_current(request, database))


def _view(
    request: Request,
    database: DatabaseDep,
    wallet: Wallet,
    template: str,
    *,
    nav: str,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    locale = page_locale(request)
    return page(
        request,
        database,
        template,
        status_code=status_code,
        nav=nav,
        assets=wallet.settings.wallet_assets,
        kind_labels=KIND_LABELS,
        status_labels=STATUS_LABELS,
        event_labels=EVENT_LABELS,
        describe=_describe(locale),
        **context,
    )


def _amount(wallet: Wallet, amount: str, currency: str) -> tuple[str, int]:
    asset = wallet.offered(currency)
    return asset.code, parse_amount(amount.strip().replace(",", ""), asset)


def _new_key() -> str:
    return str(uuid.uuid4())


def _receipt(result: OperationResult, flag: str) -> Response:
    return redirect(f"/activity/{result.operation.reference}?{flag}=1")


# Home -------------------------------------------------------------------------------------


@router.get("/home", response_class=HTMLResponse)
def home(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    current = _current(request, database)
    user_id = current.user_id
    now = utc_now()

    def read(session: Any) -> dict[str, Any]:
        found = queries.balances(session, wallet=wallet, user_id=user_id)
        main = found[0].asset.code if found else wallet.settings.wallet_assets[0]
        requests = queries.money_requests(session, user_id=user_id, now=now, limit=20)
        return {
            "me": session.get_one(User, user_id),
            "balances": found,
            "pending": queries.pending(session, user_id=user_id, limit=5),
            "recent": queries.activity(session, wallet=wallet, user_id=user_id, limit=6).items,
            "failed": queries.activity(
                session,
                wallet=wallet,
                user_id=user_id,
                filters=queries.ActivityFilter(status="failed", date_from=(now.date())),
                limit=3,
            ).items,
            "asked": [r for r in requests if r.direction == "incoming" and r.status == "open"],
            "spending": queries.spending(
                session, wallet=wallet, user_id=user_id, asset=main, now=now
            ),
        }

    data = database.run(read, write=False)
    return _view(
        request,
        database,
        wallet,
        "home.html",
        nav="home",
        page_class="wide",
        chart=_chart(data["spending"]),
        **data,
    )


def _chart(spending: queries.Spending) -> dict[str, Any]:
    """Bar geometry for the spending chart, drawn as SVG by the template."""
    top = max((amount for _, amount in spending.months), default=0) or 1
    width, height, gap = 300, 140, 10
    bar = (width - gap * (len(spending.months) - 1)) / max(1, len(spending.months))
    bars = []
    for index, (month, amount) in enumerate(spending.months):
        tall = round(amount / top * (height - 40)) if amount else 0
        bars.append(
            {
                "x": round(index * (bar + gap), 1),
                "y": height - 18 - tall,
                "width": round(bar, 1),
                "height": tall,
                "month": month,
                "amount": amount,
                "now": index == len(spending.months) - 1,
            }
        )
    return {"bars": bars, "width": width, "height": height}


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
    _current(request, database)
    form = {"to": to, "amount": amount, "currency": currency.upper(), "note": note}
    return _view(request, database, wallet, "send.html", nav="send", form=form)


@router.get("/send/recipient", response_class=HTMLResponse)
def recipient_preview(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    to: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    """The masked name of who the typed contact belongs to (an htmx fragment)."""
    caller = _caller(_current(request, database))
    found, error = None, None
    if to.strip():
        try:
            found = database.run(
                lambda session: service.find_recipient(
                    session, wallet=wallet, caller=caller, to=to
                ),
                write=False,
            )
        except PurseError as refused:
            error = refused
    return _view(
        request, database, wallet, "_recipient.html", nav="send", found=found, problem=error
    )


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
    caller = _form_caller(request, database, csrf_token)
    form = {"to": to, "amount": amount, "currency": currency, "note": note}
    try:
        asset, amount_minor = _amount(wallet, amount, currency)
        found = database.run(
            lambda session: service.find_recipient(session, wallet=wallet, caller=caller, to=to),
            write=False,
        )
    except PurseError as error:
        return _view(
            request,
            database,
            wallet,
            "send.html",
            nav="send",
            status_code=error.status,
            error=error,
            form=form,
        )
    return _view(
        request,
        database,
        wallet,
        "send_confirm.html",
        nav="send",
        form=form,
        recipient=found,
        asset=asset,
        amount_minor=amount_minor,
        idempotency_key=_new_key(),
    )


@router.post("/send/confirm", response_class=HTMLResponse)
def send_confirm(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    to: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    note: Field = "",
    idempotency_key: Field = "",
) -> Response:
    """Step two: send. The form's key makes a second click replay the first."""
    caller = _form_caller(request, database, csrf_token)
    try:
        asset, amount_minor = _amount(wallet, amount, currency)
        result = database.run(
            lambda session: service.send(
                session,
                wallet=wallet,
                caller=caller,
                to=to,
                asset=asset,
                amount_minor=amount_minor,
                note=note or None,
                idempotency_key=idempotency_key,
            )
        )
    except PurseError as error:
        form = {"to": to, "amount": amount, "currency": currency, "note": note}
        return _view(
            request,
            database,
            wallet,
            "send.html",
            nav="send",
            status_code=error.status,
            error=error,
            form=form,
        )
    return _receipt(result, "sent")


@router.get("/pay/{handle}")
def pay_link(handle: str, amount: str = "", currency: str = "") -> Response:
    """A payment link from someone's QR code opens the send page with them filled in."""
    query = {"to": handle[:32], "amount": amount[:40], "currency": currency[:12]}
    return redirect("/send?" + urlencode({k: v for k, v in query.items() if v}))


# Requests ---------------------------------------------------------------------------------


def _requests_page(
    request: Request,
    database: DatabaseDep,
    wallet: Wallet,
    caller: Caller,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    found = database.run(
        lambda session: queries.money_requests(session, user_id=caller.user_id, now=utc_now()),
        write=False,
    )
    return _view(
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
        idempotency_key=_new_key(),
        notice=notice,
    )


@router.get("/request", response_class=HTMLResponse)
def request_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    caller = _caller(_current(request, database))
    notice = None
    if request.query_params.get("asked"):
        notice = translate(NOTICES["asked"], page_locale(request))
    return _requests_page(request, database, wallet, caller, notice=notice)


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
    caller = _form_caller(request, database, csrf_token)
    try:
        asset, amount_minor = _amount(wallet, amount, currency)
        database.run(
            lambda session: service.request_money(
                session,
                wallet=wallet,
                caller=caller,
                payer=payer,
                asset=asset,
                amount_minor=amount_minor,
                note=note or None,
            )
        )
    except PurseError as error:
        form = {"payer": payer, "amount": amount, "currency": currency, "note": note}
        return _requests_page(
            request, database, wallet, caller, status_code=error.status, error=error, form=form
        )
    return redirect("/request?asked=1")


@router.post("/requests/{request_id}/pay", response_class=HTMLResponse)
def pay_request(
    request: Request,
    request_id: int,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    idempotency_key: Field = "",
) -> Response:
    caller = _form_caller(request, database, csrf_token)
    try:
        result = database.run(
            lambda session: service.pay_request(
                session,
                wallet=wallet,
                caller=caller,
                request_id=request_id,
                idempotency_key=idempotency_key,
            )
        )
    except PurseError as error:
        return _requests_page(
            request, database, wallet, caller, status_code=error.status, error=error
        )
    return _receipt(result, "sent")


@router.post("/requests/{request_id}/{answer}", response_class=HTMLResponse)
def answer_request(
    request: Request,
    request_id: int,
    answer: str,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
) -> Response:
    caller = _form_caller(request, database, csrf_token)
    answers = {"decline": "declined", "cancel": "cancelled"}
    if answer not in answers:
        raise NotFound()
    try:
        database.run(
            lambda session: service.answer_request(
                session, caller=caller, request_id=request_id, answer=answers[answer]
            )
        )
    except PurseError as error:
        return _requests_page(
            request, database, wallet, caller, status_code=error.status, error=error
        )
    return redirect("/request")


# Receive ----------------------------------------------------------------------------------


@router.get("/receive", response_class=HTMLResponse)
def receive(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    current = _current(request, database)
    me = database.run(lambda session: session.get_one(User, current.user_id), write=False)
    return _view(
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
    current = _current(request, database)
    handle = database.run(
        lambda session: session.get_one(User, current.user_id).handle, write=False
    )
    return Response(
        qr_svg(payment_link(request, handle)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=300"},
    )


# Top-up and withdraw ----------------------------------------------------------------------


def _funding_page(
    request: Request,
    database: DatabaseDep,
    wallet: Wallet,
    caller: Caller,
    mode: str,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    sources, found = database.run(
        lambda session: (
            queries.funding_sources(session, user_id=caller.user_id),
            queries.balances(session, wallet=wallet, user_id=caller.user_id),
        ),
        write=False,
    )
    return _view(
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
        idempotency_key=_new_key(),
    )


@router.get("/top-up", response_class=HTMLResponse)
def top_up_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    return _funding_page(request, database, wallet, _caller(_current(request, database)), "top_up")


@router.get("/withdraw", response_class=HTMLResponse)
def withdraw_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    return _funding_page(
        request, database, wallet, _caller(_current(request, database)), "withdrawal"
    )


def _start_funding(
    request: Request,
    database: DatabaseDep,
    wallet: Wallet,
    mode: str,
    csrf_token: str,
    funding_source_id: str,
    amount: str,
    currency: str,
    idempotency_key: str,
) -> Response:
    caller = _form_caller(request, database, csrf_token)
    begin = bank.start_top_up if mode == "top_up" else bank.start_withdrawal
    try:
        asset, amount_minor = _amount(wallet, amount, currency)
        source_id = int(funding_source_id) if funding_source_id.isdigit() else 0
        result = database.run(
            lambda session: begin(
                session,
                wallet=wallet,
                caller=caller,
                funding_source_id=source_id,
                asset=asset,
                amount_minor=amount_minor,
                idempotency_key=idempotency_key,
            )
        )
    except PurseError as error:
        form = {"funding_source_id": funding_source_id, "amount": amount, "currency": currency}
        return _funding_page(
            request,
            database,
            wallet,
            caller,
            mode,
            status_code=error.status,
            error=error,
            form=form,
        )
    bank.submit_if_unsent(wallet, result.operation)
    return _receipt(result, "started")


@router.post("/top-up", response_class=HTMLResponse)
def top_up(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    funding_source_id: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    idempotency_key: Field = "",
) -> Response:
    return _start_funding(
        request,
        database,
        wallet,
        "top_up",
        csrf_token,
        funding_source_id,
        amount,
        currency,
        idempotency_key,
    )


@router.post("/withdraw", response_class=HTMLResponse)
def withdraw(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    funding_source_id: Field = "",
    amount: Field = "",
    currency: Field = "CNY",
    idempotency_key: Field = "",
) -> Response:
    return _start_funding(
        request,
        database,
        wallet,
        "withdrawal",
        csrf_token,
        funding_source_id,
        amount,
        currency,
        idempotency_key,
    )


# Convert ----------------------------------------------------------------------------------


@router.get("/convert", response_class=HTMLResponse)
def convert_form(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    caller = _caller(_current(request, database))
    return _convert_page(request, database, wallet, caller)


def _convert_page(
    request: Request,
    database: DatabaseDep,
    wallet: Wallet,
    caller: Caller,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    found = database.run(
        lambda session: queries.balances(session, wallet=wallet, user_id=caller.user_id),
        write=False,
    )
    return _view(
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
    caller = _form_caller(request, database, csrf_token)
    form = {"amount": amount, "currency": currency, "to_currency": to_currency}
    try:
        asset, amount_minor = _amount(wallet, amount, currency)
        quote = database.run(
            lambda session: service.quote(
                session,
                wallet=wallet,
                caller=caller,
                from_asset=asset,
                to_asset=to_currency,
                amount_minor=amount_minor,
            )
        )
    except PurseError as error:
        return _convert_page(
            request, database, wallet, caller, status_code=error.status, error=error, form=form
        )
    return _view(
        request,
        database,
        wallet,
        "convert_quote.html",
        nav="home",
        quote=quote,
        idempotency_key=_new_key(),
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
    caller = _form_caller(request, database, csrf_token)
    try:
        result = database.run(
            lambda session: service.convert(
                session,
                wallet=wallet,
                caller=caller,
                quote_id=quote_id,
                idempotency_key=idempotency_key,
            )
        )
    except PurseError as error:
        return _convert_page(
            request, database, wallet, caller, status_code=error.status, error=error
        )
    return _receipt(result, "converted")


# Funding sources --------------------------------------------------------------------------


def _sources_page(
    request: Request,
    database: DatabaseDep,
    wallet: Wallet,
    caller: Caller,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    sources = database.run(
        lambda session: queries.funding_sources(session, user_id=caller.user_id), write=False
    )
    simulated = wallet.default_provider == Simulator.name
    return _view(
        request,
        database,
        wallet,
        "funding_sources.html",
        nav="home",
        status_code=status_code,
        error=error,
        notice=notice,
        sources=sources,
        test_cards=TEST_CARDS if simulated else {},
        this_year=date.today().year,  # noqa: DTZ011 - a form default, not a record
    )


@router.get("/funding-sources", response_class=HTMLResponse)
def funding_sources(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    caller = _caller(_current(request, database))
    notice = None
    if request.query_params.get("added"):
        notice = translate(NOTICES["added"], page_locale(request))
    return _sources_page(request, database, wallet, caller, notice=notice)


@router.post("/funding-sources", response_class=HTMLResponse)
def add_funding_source(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    kind: Field = "card",
    number: Field = "",
    expiry_month: Field = "",
    expiry_year: Field = "",
    holder_name: Field = "",
    bank_name: Field = "",
) -> Response:
    """Link a card or account; like changing a password, it needs a recent sign-in."""
    check_csrf(request, csrf_token)
    current = _current(request, database)
    caller = _caller(current)
    settings = database.settings
    if "add_funding_source" in settings.step_up_actions and not is_recent(
        current, settings.step_up_max_age_seconds
    ):
        return step_up_page(request, database, identity, current, next="/funding-sources")
    try:
        if kind == "bank_account":
            card, account = (
                None,
                BankAccountDetails(
                    bank_name=bank_name[:100], account_number=number[:48], holder_name=holder_name
                ),
            )
        else:
            month = int(expiry_month) if expiry_month.isdigit() else 0
            year = int(expiry_year) if expiry_year.isdigit() else 0
            card, account = (
                CardDetails(
                    number=number[:32],
                    expiry_month=month,
                    expiry_year=year,
                    holder_name=holder_name,
                ),
                None,
            )
        database.run(
            lambda session: service.add_funding_source(
                session, wallet=wallet, caller=caller, card=card, bank_account=account
            )
        )
    except PurseError as error:
        # The number is never shown again, even to its owner.
        return _sources_page(
            request, database, wallet, caller, status_code=error.status, error=error
        )
    return redirect("/funding-sources?added=1")


@router.post("/funding-sources/{funding_source_id}/remove")
def remove_funding_source(
    request: Request,
    funding_source_id: int,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
) -> Response:
    caller = _form_caller(request, database, csrf_token)
    try:
        database.run(
            lambda session: service.remove_funding_source(
                session, caller=caller, funding_source_id=funding_source_id
            )
        )
    except PurseError as error:
        return _sources_page(
            request, database, wallet, caller, status_code=error.status, error=error
        )
    return redirect("/funding-sources")


# Activity ---------------------------------------------------------------------------------


@router.get("/activity", response_class=HTMLResponse)
def activity(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    cursor: Annotated[str, Query(max_length=20)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    currency: Annotated[str, Query(max_length=12)] = "",
    direction: Annotated[str, Query(max_length=12)] = "",
    kind: Annotated[str, Query(max_length=12)] = "",
    status: Annotated[str, Query(max_length=12)] = "",
    date_from: Annotated[str, Query(max_length=10)] = "",
    date_to: Annotated[str, Query(max_length=10)] = "",
    q: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    caller = _caller(_current(request, database))
    filters = queries.ActivityFilter(
        asset=currency or None,
        direction=direction if direction in queries.DIRECTIONS else None,
        kind=kind if kind in KIND_LABELS else None,
        status=status if status in ("pending", "completed", "failed") else None,
        date_from=_date(date_from),
        date_to=_date(date_to),
        search=q or None,
    )
    try:
        page_of, pending = database.run(
            lambda session: (
                queries.activity(
                    session,
                    wallet=wallet,
                    user_id=caller.user_id,
                    filters=filters,
                    cursor=cursor,
                    limit=limit,
                ),
                queries.pending(session, user_id=caller.user_id) if not cursor else [],
            ),
            write=False,
        )
    except PurseError as error:
        return _view(
            request,
            database,
            wallet,
            "activity.html",
            nav="activity",
            error=error,
            status_code=error.status,
            items=[],
            pending=[],
            next_url=None,
            filters={},
        )
    filter_values = {
        "currency": currency,
        "direction": direction,
        "kind": kind,
        "status": status,
        "date_from": date_from,
        "date_to": date_to,
        "q": q,
    }
    next_url = None
    if page_of.next_cursor:
        kept = {k: v for k, v in filter_values.items() if v}
        if limit != 20:
            kept["limit"] = str(limit)
        next_url = "/activity?" + urlencode({**kept, "cursor": page_of.next_cursor})
    template = "_activity_rows.html" if request.headers.get("hx-request") else "activity.html"
    return _view(
        request,
        database,
        wallet,
        template,
        nav="activity",
        items=page_of.items,
        pending=pending,
        next_url=next_url,
        filters=filter_values,
    )


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/activity/{reference}", response_class=HTMLResponse)
def operation(
    request: Request, reference: str, database: DatabaseDep, wallet: WalletDep
) -> Response:
    caller = _caller(_current(request, database))
    view = database.run(
        lambda session: queries.operation_view(
            session, user_id=caller.user_id, reference=reference[:32]
        ),
        write=False,
    )
    template = "_operation.html" if request.headers.get("hx-request") else "operation.html"
    return _view(
        request,
        database,
        wallet,
        template,
        nav="activity",
        op=view,
        just=next(
            (flag for flag in ("sent", "started", "converted") if request.query_params.get(flag)),
            None,
        ),
    )


@router.get("/activity/{reference}/receipt", response_class=HTMLResponse)
def receipt(request: Request, reference: str, database: DatabaseDep, wallet: WalletDep) -> Response:
    caller = _caller(_current(request, database))
    view, me = database.run(
        lambda session: (
            queries.operation_view(session, user_id=caller.user_id, reference=reference[:32]),
            session.get_one(User, caller.user_id),
        ),
        write=False,
    )
    return _view(
        request,
        database,
        wallet,
        "receipt.html",
        nav="activity",
        op=view,
        me=me,
        printed_at=utc_now(),
    )


# Statements -------------------------------------------------------------------------------


def _statements_page(
    request: Request,
    database: DatabaseDep,
    wallet: Wallet,
    caller: Caller,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
) -> HTMLResponse:
    found = database.run(
        lambda session: statements.recent_statements(session, user_id=caller.user_id),
        write=False,
    )
    local = utc_now().astimezone(ZoneInfo(wallet.settings.timezone))
    months = []
    year, month = local.year, local.month
    for _ in range(12):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return _view(
        request,
        database,
        wallet,
        "statements.html",
        nav="statements",
        status_code=status_code,
        error=error,
        statements=found,
        months=months,
    )


@router.get("/statements", response_class=HTMLResponse)
def statements_page(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    return _statements_page(request, database, wallet, _caller(_current(request, database)))


@router.post("/statements", response_class=HTMLResponse)
def request_statement(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    month: Field = "",
    format: Field = "pdf",
) -> Response:
    caller = _form_caller(request, database, csrf_token)
    try:
        created = database.run(
            lambda session: statements.request_statement(
                session,
                wallet=wallet,
                caller=caller,
                month=month,
                format=format,
                locale=page_locale(request),
            )
        )
    except PurseError as error:
        return _statements_page(
            request, database, wallet, caller, status_code=error.status, error=error
        )
    return redirect(f"/statements/{created.id}")


@router.get("/statements/{statement_id}", response_class=HTMLResponse)
def statement_progress(
    request: Request, statement_id: int, database: DatabaseDep, wallet: WalletDep
) -> Response:
    """How far a statement is; the page polls this (htmx) until it can be downloaded."""
    caller = _caller(_current(request, database))
    found = database.run(
        lambda session: statements.statement_for(
            session, user_id=caller.user_id, statement_id=statement_id
        ),
        write=False,
    )
    template = "_statement.html" if request.headers.get("hx-request") else "statement.html"
    return _view(request, database, wallet, template, nav="statements", statement=found)


@router.get("/statements/{statement_id}/download")
def statement_download(
    request: Request, statement_id: int, database: DatabaseDep, wallet: WalletDep
) -> Response:
    caller = _caller(_current(request, database))
    return api_statement_download(wallet, caller.user_id, statement_id)
