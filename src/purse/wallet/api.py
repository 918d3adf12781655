"""JSON routes of the wallet: balances, activity, sending, requests, conversion, top-up, withdrawal.

Thin adapters: parse, authenticate, open one transaction, call one service,
render. Every POST that moves money needs an ``Idempotency-Key`` header; a retry
with the same key answers with the first operation (``Idempotent-Replayed: true``).
Top-ups and withdrawals also call the funding provider, after their operation
is committed and outside any transaction (see :mod:`purse.wallet.bank`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

import segno
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from purse.deps import require, step_up_for
from purse.errors import NotFound, ValidationFailed
from purse.funding.provider import BankAccountDetails, CardDetails
from purse.i18n import translate
from purse.identity.models import User
from purse.identity.sessions import Authenticated
from purse.models import utc_now
from purse.money.amounts import parse_amount
from purse.problems import request_locale
from purse.wallet import bank, queries, rules, service, statements
from purse.wallet import schemas as s
from purse.wallet.context import Caller, Wallet
from purse.wallet.errors import CATALOGUE, IdempotencyKeyMissing
from purse.wallet.models import FxRate, Statement
from purse.wallet.operations import OperationResult

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])
callbacks = APIRouter(prefix="/v1/funding", tags=["funding providers"])
operators = APIRouter(prefix="/v1/admin", tags=["operators"])


def get_wallet(request: Request) -> Wallet:
    wallet: Wallet = request.app.state.wallet
    return wallet


def get_caller(current: Annotated[Authenticated, Depends(require("wallet:own"))]) -> Caller:
    return Caller(user_id=current.user_id, session_id=current.session_id, via="api")


IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="A unique key per request (a UUID); send the same key to retry",
        ),
    ] = None,
) -> str:
    if not key:
        raise IdempotencyKeyMissing()
    return rules.check_idempotency_key(key)


WalletDep = Annotated[Wallet, Depends(get_wallet)]
CallerDep = Annotated[Caller, Depends(get_caller)]
KeyDep = Annotated[str, Depends(idempotency_key)]


def _amount(wallet: Wallet, amount: s.AmountIn) -> tuple[str, int]:
    asset = wallet.offered(amount.currency)
    return asset.code, parse_amount(amount.value, asset)


def _answer(
    request: Request,
    response: Response,
    wallet: Wallet,
    caller: Caller,
    use_case: Callable[[Session], OperationResult],
) -> s.OperationRead:
    """Run a use case that completes at once, and read its answer in the same transaction."""

    def run(session: Session) -> tuple[bool, queries.OperationView]:
        result = use_case(session)
        view = queries.view_of(session, operation=result.operation, user_id=caller.user_id)
        return result.replayed, view

    replayed, view = wallet.database.run(run)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return s.OperationRead.of(view, wallet.assets, request_locale(request))


def _operation(
    request: Request,
    response: Response,
    wallet: Wallet,
    caller: Caller,
    result: OperationResult,
) -> s.OperationRead:
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    view = wallet.database.run(
        lambda session: queries.operation_view(
            session, user_id=caller.user_id, reference=result.operation.reference
        ),
        write=False,
    )
    return s.OperationRead.of(view, wallet.assets, request_locale(request))


@router.get("/balances", response_model=list[s.BalanceRead])
def balances(wallet: WalletDep, caller: CallerDep) -> list[s.BalanceRead]:
    """One balance per currency the user holds."""
    found = wallet.database.run(
        lambda session: queries.balances(session, wallet=wallet, user_id=caller.user_id),
        write=False,
    )
    return [
        s.BalanceRead(
            currency=view.asset.code,
            balance=s.Money.of(view.balance_minor, view.asset.code, wallet.assets),
            available=s.Money.of(view.available_minor, view.asset.code, wallet.assets),
            held=s.Money.of(view.held_minor, view.asset.code, wallet.assets),
            incoming=s.Money.of(view.incoming_minor, view.asset.code, wallet.assets),
        )
        for view in found
    ]


@router.get("/activity", response_model=s.ActivityRead)
def activity(
    request: Request,
    wallet: WalletDep,
    caller: CallerDep,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    currency: Annotated[str | None, Query(max_length=12)] = None,
    direction: Literal["in", "out", "exchange"] | None = None,
    kind: Literal["top_up", "withdrawal", "send", "convert"] | None = None,
    status: Literal["pending", "completed", "failed"] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    counterparty: Annotated[str | None, Query(max_length=64, description="A handle")] = None,
    q: Annotated[str | None, Query(max_length=64, description="Search notes and names")] = None,
) -> s.ActivityRead:
    """The user's operations, newest first; `next_cursor` fetches the next page."""
    filters = queries.ActivityFilter(
        asset=currency,
        direction=direction,
        kind=kind,
        status=status,
        date_from=date_from,
        date_to=date_to,
        counterparty=counterparty,
        search=q,
    )
    page = wallet.database.run(
        lambda session: queries.activity(
            session,
            wallet=wallet,
            user_id=caller.user_id,
            filters=filters,
            cursor=cursor,
            limit=limit,
        ),
        write=False,
    )
    locale = request_locale(request)
    return s.ActivityRead(
        items=[s.OperationRead.of(item, wallet.assets, locale) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/operations/{reference}", response_model=s.OperationRead)
def operation(
    request: Request,
    reference: Annotated[str, Path(max_length=32)],
    wallet: WalletDep,
    caller: CallerDep,
) -> s.OperationRead:
    """One operation with its status timeline; the reference is on the receipt."""
    view = wallet.database.run(
        lambda session: queries.operation_view(
            session, user_id=caller.user_id, reference=reference
        ),
        write=False,
    )
    return s.OperationRead.of(view, wallet.assets, request_locale(request))


@router.get("/recipients", response_model=s.RecipientRead)
def recipient(
    wallet: WalletDep,
    caller: CallerDep,
    to: Annotated[str, Query(max_length=320, description="Phone, email or handle")],
) -> s.RecipientRead:
    """Who a phone number, email or handle belongs to, masked: check before sending."""
    found = wallet.database.run(
        lambda session: service.find_recipient(session, wallet=wallet, caller=caller, to=to),
        write=False,
    )
    return s.RecipientRead(handle=found.handle, masked_name=found.masked_name)


@router.post("/transfers", status_code=status.HTTP_201_CREATED, response_model=s.OperationRead)
def send(
    request: Request,
    response: Response,
    body: s.TransferCreate,
    wallet: WalletDep,
    caller: CallerDep,
    key: KeyDep,
) -> s.OperationRead:
    """Send money to another user at once."""
    asset, amount_minor = _amount(wallet, body.amount)
    return _answer(
        request,
        response,
        wallet,
        caller,
        lambda session: service.send(
            session,
            wallet=wallet,
            caller=caller,
            to=body.to,
            asset=asset,
            amount_minor=amount_minor,
            note=body.note,
            idempotency_key=key,
        ),
    )


@router.get("/funding-sources", response_model=list[s.FundingSourceRead])
def funding_sources(wallet: WalletDep, caller: CallerDep) -> list[s.FundingSourceRead]:
    """The user's linked cards and bank accounts (brand and last 4 digits only)."""
    found = wallet.database.run(
        lambda session: queries.funding_sources(session, user_id=caller.user_id), write=False
    )
    return [s.FundingSourceRead.model_validate(item, from_attributes=True) for item in found]


@router.post(
    "/funding-sources", status_code=status.HTTP_201_CREATED, response_model=s.FundingSourceRead
)
def add_funding_source(
    body: s.FundingSourceCreate,
    wallet: WalletDep,
    caller: CallerDep,
    _fresh: Annotated[Authenticated, Depends(step_up_for("add_funding_source"))],
) -> s.FundingSourceRead:
    """Link a card or bank account (needs a recent password confirmation: step-up)."""
    card = bank_account = None
    if isinstance(body, s.CardCreate):
        card = CardDetails(
            number=body.number,
            expiry_month=body.expiry_month,
            expiry_year=body.expiry_year,
            holder_name=body.holder_name,
        )
    else:
        bank_account = BankAccountDetails(
            bank_name=body.bank_name,
            account_number=body.account_number,
            holder_name=body.holder_name,
        )
    source = wallet.database.run(
        lambda session: service.add_funding_source(
            session, wallet=wallet, caller=caller, card=card, bank_account=bank_account
        )
    )
    return s.FundingSourceRead.model_validate(source, from_attributes=True)


@router.delete("/funding-sources/{funding_source_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_funding_source(
    funding_source_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    wallet: WalletDep,
    caller: CallerDep,
) -> Response:
    """Unlink a card or bank account; past operations still name it."""
    wallet.database.run(
        lambda session: service.remove_funding_source(
            session, caller=caller, funding_source_id=funding_source_id
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _funding(
    request: Request,
    response: Response,
    wallet: Wallet,
    caller: Caller,
    result: OperationResult,
) -> s.OperationRead:
    bank.submit_if_unsent(wallet, result.operation)
    return _operation(request, response, wallet, caller, result)


@router.post("/top-ups", status_code=status.HTTP_202_ACCEPTED, response_model=s.OperationRead)
def top_up(
    request: Request,
    response: Response,
    body: s.FundingCreate,
    wallet: WalletDep,
    caller: CallerDep,
    key: KeyDep,
) -> s.OperationRead:
    """Add money from a linked card or account: pending until the bank settles it."""
    asset, amount_minor = _amount(wallet, body.amount)
    result = wallet.database.run(
        lambda session: bank.start_top_up(
            session,
            wallet=wallet,
            caller=caller,
            funding_source_id=body.funding_source_id,
            asset=asset,
            amount_minor=amount_minor,
            idempotency_key=key,
        )
    )
    return _funding(request, response, wallet, caller, result)


@router.post("/withdrawals", status_code=status.HTTP_202_ACCEPTED, response_model=s.OperationRead)
def withdraw(
    request: Request,
    response: Response,
    body: s.FundingCreate,
    wallet: WalletDep,
    caller: CallerDep,
    key: KeyDep,
) -> s.OperationRead:
    """Move money to a linked card or account: held until the bank pays it, released if not."""
    asset, amount_minor = _amount(wallet, body.amount)
    result = wallet.database.run(
        lambda session: bank.start_withdrawal(
            session,
            wallet=wallet,
            caller=caller,
            funding_source_id=body.funding_source_id,
            asset=asset,
            amount_minor=amount_minor,
            idempotency_key=key,
        )
    )
    return _funding(request, response, wallet, caller, result)


@router.get("/fx-rates", response_model=list[s.FxRateRead])
def fx_rates(wallet: WalletDep, caller: CallerDep) -> list[s.FxRateRead]:
    """The operator's mid rates; quotes add the spread."""
    rows = wallet.database.run(
        lambda session: list(session.scalars(select(FxRate).order_by(FxRate.base_asset))),
        write=False,
    )
    return [
        s.FxRateRead(base=r.base_asset, quote=r.quote_asset, rate=r.rate, updated_at=r.updated_at)
        for r in rows
    ]


@router.post("/quotes", status_code=status.HTTP_201_CREATED, response_model=s.QuoteRead)
def create_quote(body: s.QuoteCreate, wallet: WalletDep, caller: CallerDep) -> s.QuoteRead:
    """A price for a conversion, good until `expires_at`; an expired quote is refused."""
    if body.amount.currency.upper() != body.from_currency.upper():
        raise ValidationFailed(detail="amount.currency must be from_currency")
    asset, amount_minor = _amount(wallet, body.amount)
    found = wallet.database.run(
        lambda session: service.quote(
            session,
            wallet=wallet,
            caller=caller,
            from_asset=asset,
            to_asset=body.to_currency.upper(),
            amount_minor=amount_minor,
        )
    )
    return s.QuoteRead(
        id=found.id,
        sell=s.Money.of(found.from_amount_minor, found.from_asset, wallet.assets),
        buy=s.Money.of(found.to_amount_minor, found.to_asset, wallet.assets),
        rate=found.rate,
        mid_rate=found.mid_rate,
        spread=s.Money.of(found.spread_minor, found.to_asset, wallet.assets),
        expires_at=found.expires_at,
    )


@router.post("/conversions", status_code=status.HTTP_201_CREATED, response_model=s.OperationRead)
def convert(
    request: Request,
    response: Response,
    body: s.ConversionCreate,
    wallet: WalletDep,
    caller: CallerDep,
    key: KeyDep,
) -> s.OperationRead:
    """Convert at a quote's price, as one atomic ledger group."""
    return _answer(
        request,
        response,
        wallet,
        caller,
        lambda session: service.convert(
            session, wallet=wallet, caller=caller, quote_id=body.quote_id, idempotency_key=key
        ),
    )


def _request_read(view: queries.RequestView, wallet: Wallet) -> s.MoneyRequestRead:
    return s.MoneyRequestRead(
        id=view.id,
        direction=view.direction,
        other=s.PartyRead(handle=view.other.handle, masked_name=view.other.masked_name),
        amount=s.Money.of(view.amount_minor, view.asset, wallet.assets),
        note=view.note,
        status=view.status,
        expires_at=view.expires_at,
        created_at=view.created_at,
        operation_reference=view.operation_reference,
    )


@router.get("/requests", response_model=list[s.MoneyRequestRead])
def money_requests(wallet: WalletDep, caller: CallerDep) -> list[s.MoneyRequestRead]:
    """Money the user asked for and was asked for, newest first."""
    found = wallet.database.run(
        lambda session: queries.money_requests(session, user_id=caller.user_id, now=utc_now()),
        write=False,
    )
    return [_request_read(view, wallet) for view in found]


def _one_request(wallet: Wallet, caller: Caller, request_id: int) -> s.MoneyRequestRead:
    found = wallet.database.run(
        lambda session: queries.money_requests(
            session, user_id=caller.user_id, now=utc_now(), request_id=request_id
        ),
        write=False,
    )
    return _request_read(found[0], wallet)


@router.post("/requests", status_code=status.HTTP_201_CREATED, response_model=s.MoneyRequestRead)
def request_money(
    body: s.MoneyRequestCreate, wallet: WalletDep, caller: CallerDep
) -> s.MoneyRequestRead:
    """Ask another user for an amount; they are told and can pay or decline."""
    asset, amount_minor = _amount(wallet, body.amount)
    created = wallet.database.run(
        lambda session: service.request_money(
            session,
            wallet=wallet,
            caller=caller,
            payer=body.payer,
            asset=asset,
            amount_minor=amount_minor,
            note=body.note,
        )
    )
    return _one_request(wallet, caller, created.id)


RequestId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "/requests/{request_id}/pay",
    status_code=status.HTTP_201_CREATED,
    response_model=s.OperationRead,
)
def pay_request(
    request: Request,
    response: Response,
    request_id: RequestId,
    wallet: WalletDep,
    caller: CallerDep,
    key: KeyDep,
) -> s.OperationRead:
    """Pay a request made of the user: the amount is sent at once."""
    return _answer(
        request,
        response,
        wallet,
        caller,
        lambda session: service.pay_request(
            session, wallet=wallet, caller=caller, request_id=request_id, idempotency_key=key
        ),
    )


@router.post("/requests/{request_id}/decline", response_model=s.MoneyRequestRead)
def decline_request(
    request_id: RequestId, wallet: WalletDep, caller: CallerDep
) -> s.MoneyRequestRead:
    """Decline a request made of the user."""
    wallet.database.run(
        lambda session: service.answer_request(
            session, caller=caller, request_id=request_id, answer="declined"
        )
    )
    return _one_request(wallet, caller, request_id)


@router.post("/requests/{request_id}/cancel", response_model=s.MoneyRequestRead)
def cancel_request(
    request_id: RequestId, wallet: WalletDep, caller: CallerDep
) -> s.MoneyRequestRead:
    """Withdraw a request the user made."""
    wallet.database.run(
        lambda session: service.answer_request(
            session, caller=caller, request_id=request_id, answer="cancelled"
        )
    )
    return _one_request(wallet, caller, request_id)


def payment_link(request: Request, handle: str) -> str:
    return str(request.base_url).rstrip("/") + f"/pay/{handle}"


def qr_svg(link: str) -> str:
    """The QR code of a payment link as an SVG document (drawn by segno)."""
    import io

    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="svg", scale=6, border=2, dark="#111827")
    return buffer.getvalue().decode()


@router.get("/receive", response_model=s.ReceiveRead)
def receive(request: Request, wallet: WalletDep, caller: CallerDep) -> s.ReceiveRead:
    """The user's payment link and QR code: they open the send page with this wallet filled in."""
    handle = wallet.database.run(
        lambda session: session.get_one(User, caller.user_id).handle, write=False
    )
    return s.ReceiveRead(
        handle=handle, link=payment_link(request, handle), qr_svg="/v1/wallet/receive/qr.svg"
    )


@router.get("/receive/qr.svg", response_class=Response)
def receive_qr(request: Request, wallet: WalletDep, caller: CallerDep) -> Response:
    """The QR code of the user's payment link."""
    handle = wallet.database.run(
        lambda session: session.get_one(User, caller.user_id).handle, write=False
    )
    return Response(qr_svg(payment_link(request, handle)), media_type="image/svg+xml")


@router.get("/spending", response_model=s.SpendingRead)
def spending(
    wallet: WalletDep,
    caller: CallerDep,
    currency: Annotated[str, Query(min_length=2, max_length=12)] = "CNY",
) -> s.SpendingRead:
    """Money sent and withdrawn per month (six months), and to whom this month."""
    asset = wallet.offered(currency)
    found = wallet.database.run(
        lambda session: queries.spending(
            session, wallet=wallet, user_id=caller.user_id, asset=asset.code, now=utc_now()
        ),
        write=False,
    )
    return s.SpendingRead(
        currency=asset.code,
        months=[
            s.SpendingMonthRead(month=month, spent=s.Money.of(amount, asset.code, wallet.assets))
            for month, amount in found.months
        ],
        counterparties=[
            s.SpendingPartyRead(
                counterparty=s.PartyRead(handle=party.handle, masked_name=party.masked_name),
                spent=s.Money.of(amount, asset.code, wallet.assets),
            )
            for party, amount in found.counterparties
        ],
    )


def _statement_read(statement: Statement) -> s.StatementRead:
    return s.StatementRead(
        id=statement.id,
        month=statement.month,
        format=statement.format,
        locale=statement.locale,
        status=statement.status,
        lines_done=statement.lines_done,
        lines_total=statement.lines_total,
        created_at=statement.created_at,
        finished_at=statement.finished_at,
        file=f"/v1/wallet/statements/{statement.id}/file" if statement.status == "ready" else None,
    )


@router.post("/statements", status_code=status.HTTP_202_ACCEPTED, response_model=s.StatementRead)
def request_statement(
    request: Request, body: s.StatementCreate, wallet: WalletDep, caller: CallerDep
) -> s.StatementRead:
    """Ask for a month's statement; a worker prepares it, poll `GET` for its progress."""
    created = wallet.database.run(
        lambda session: statements.request_statement(
            session,
            wallet=wallet,
            caller=caller,
            month=body.month,
            format=body.format,
            locale=request_locale(request),
        )
    )
    return _statement_read(created)


@router.get("/statements", response_model=list[s.StatementRead])
def list_statements(wallet: WalletDep, caller: CallerDep) -> list[s.StatementRead]:
    """The user's latest statements, newest first."""
    found = wallet.database.run(
        lambda session: statements.recent_statements(session, user_id=caller.user_id),
        write=False,
    )
    return [_statement_read(item) for item in found]


StatementId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/statements/{statement_id}", response_model=s.StatementRead)
def get_statement(
    statement_id: StatementId, wallet: WalletDep, caller: CallerDep
) -> s.StatementRead:
    """A statement's status and progress."""
    found = wallet.database.run(
        lambda session: statements.statement_for(
            session, user_id=caller.user_id, statement_id=statement_id
        ),
        write=False,
    )
    return _statement_read(found)


@router.get("/statements/{statement_id}/file", response_class=Response)
def statement_file(statement_id: StatementId, wallet: WalletDep, caller: CallerDep) -> Response:
    """The statement as CSV or PDF (409 `statement_not_ready` while it is being prepared)."""
    return statement_download(wallet, caller.user_id, statement_id)


def statement_download(wallet: Wallet, user_id: int, statement_id: int) -> Response:
    def read(session: Any) -> tuple[Statement, bytes]:
        content = statements.statement_file(session, user_id=user_id, statement_id=statement_id)
        return statements.statement_for(
            session, user_id=user_id, statement_id=statement_id
        ), content

    found, content = wallet.database.run(read, write=False)
    return Response(
        content,
        media_type=statements.MEDIA_TYPES[found.format],
        headers={
            "Content-Disposition": f'attachment; filename="{statements.download_name(found)}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/failure-reasons", response_model=list[s.FailureReasonRead])
def failure_reasons(request: Request) -> list[s.FailureReasonRead]:
    """Every reason a wallet operation can fail, with its message and next step."""
    locale = request_locale(request)
    return [
        s.FailureReasonRead(
            code=cls.code,
            status=cls.status,
            message=translate(cls.title, locale),
            next_step=translate(cls.next_step, locale) if cls.next_step else None,
            retryable=cls.retryable,
        )
        for cls in CATALOGUE
    ]


@callbacks.post("/providers/{provider_name}/events", response_model=s.ProviderEventRead)
async def provider_event(
    provider_name: Annotated[str, Path(max_length=32)],
    request: Request,
    wallet: WalletDep,
) -> s.ProviderEventRead:
    """Where a funding provider reports outcomes; signed by the provider, applied once."""
    if provider_name not in wallet.providers:
        raise NotFound()
    provider = wallet.provider(provider_name)
    body = await request.body()
    event = provider.parse_event(headers=request.headers, body=body[:65536])
    outcome = await run_in_threadpool(wallet.deliver, provider_name, event)
    return s.ProviderEventRead(status=outcome)


@operators.get("/balances", response_model=s.AllBalancesRead)
def all_balances(
    wallet: WalletDep,
    _admin: Annotated[Authenticated, Depends(require("ledger:read"))],
    currency: Annotated[str, Query(min_length=2, max_length=12)] = "CNY",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> s.AllBalancesRead:
    """Every user wallet in a currency and their sum, read at one moment (admins only)."""
    asset = wallet.assets.get(currency)
    found, count, total = wallet.database.run(
        lambda session: queries.all_balances(session, asset=asset.code, limit=limit),
        write=False,
    )
    return s.AllBalancesRead(
        currency=asset.code,
        wallets_total=count,
        total=s.Money.of(total, asset.code, wallet.assets),
        wallets=[
            s.WalletBalanceRead(
                handle=item.handle,
                balance=s.Money.of(item.balance_minor, asset.code, wallet.assets),
                available=s.Money.of(item.available_minor, asset.code, wallet.assets),
            )
            for item in found
        ],
    )
