"""JSON routes for money between people: recipients, sending, requests, receiving."""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Query, Request, Response, status

from purse.deps import IdPath
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.operations.schemas import Money, OperationRead, PartyRead
from purse.wallet import queries, service
from purse.wallet import schemas as s
from purse.wallet.api.common import (
    PREFIX,
    KeyDep,
    PrincipalDep,
    WalletDep,
    amount_of,
    answer_now,
)
from purse.wallet.context import Wallet

router = APIRouter(prefix=PREFIX, tags=["wallet"])


@router.get("/recipients", response_model=s.RecipientRead)
def find_recipient(
    wallet: WalletDep,
    principal: PrincipalDep,
    to: Annotated[str, Query(max_length=320, description="Phone, email or handle")],
) -> s.RecipientRead:
    """Who a phone number, email or handle belongs to, masked: check before sending.

    Counted per user and per address (429 ``recipient_lookups_throttled`` past the bound).
    """
    found = look_up(wallet, principal, to)
    return s.RecipientRead(handle=found.handle, masked_name=found.masked_name)


def look_up(wallet: Wallet, principal: Principal, to: str) -> service.Recipient:
    """A recipient check before sending: counted first, in a transaction that commits."""
    wallet.database.run(
        lambda session: service.count_lookup(session, wallet=wallet, principal=principal)
    )
    return wallet.database.run(
        lambda session: service.find_recipient(session, wallet=wallet, principal=principal, to=to),
        write=False,
    )


@router.post("/transfers", status_code=status.HTTP_201_CREATED, response_model=OperationRead)
async def create_transfer(
    request: Request,
    response: Response,
    body: s.TransferCreate,
    wallet: WalletDep,
    principal: PrincipalDep,
    key: KeyDep,
) -> OperationRead:
    """Send money to another user at once."""
    asset, amount_minor = amount_of(wallet, body.amount)
    return await answer_now(
        request,
        response,
        wallet,
        principal,
        lambda session: service.send(
            session,
            wallet=wallet,
            principal=principal,
            to=body.to,
            asset=asset,
            amount_minor=amount_minor,
            note=body.note,
            idempotency_key=key,
        ),
    )


def _request_read(view: queries.RequestView, wallet: Wallet) -> s.MoneyRequestRead:
    return s.MoneyRequestRead(
        id=view.id,
        direction=view.direction,
        other=PartyRead(handle=view.other.handle, masked_name=view.other.masked_name),
        amount=Money.of(view.amount_minor, view.asset, wallet.assets),
        note=view.note,
        status=view.status,
        expires_at=view.expires_at,
        created_at=view.created_at,
        operation_reference=view.operation_reference,
    )


@router.get("/requests", response_model=list[s.MoneyRequestRead])
def list_money_requests(wallet: WalletDep, principal: PrincipalDep) -> list[s.MoneyRequestRead]:
    """Money the user asked for and was asked for, newest first."""
    found = wallet.database.run(
        lambda session: queries.money_requests(
            session, user_id=principal.wallet_user_id, now=utc_now()
        ),
        write=False,
    )
    return [_request_read(view, wallet) for view in found]


def _one_request(wallet: Wallet, user_id: int, request_id: int) -> s.MoneyRequestRead:
    found = wallet.database.run(
        lambda session: queries.money_requests(
            session, user_id=user_id, now=utc_now(), request_id=request_id
        ),
        write=False,
    )
    return _request_read(found[0], wallet)


@router.post("/requests", status_code=status.HTTP_201_CREATED, response_model=s.MoneyRequestRead)
def create_money_request(
    body: s.MoneyRequestCreate, wallet: WalletDep, principal: PrincipalDep
) -> s.MoneyRequestRead:
    """Ask another user for an amount; they are told and can pay or decline."""
    asset, amount_minor = amount_of(wallet, body.amount)
    created = wallet.database.run(
        lambda session: service.request_money(
            session,
            wallet=wallet,
            principal=principal,
            payer=body.payer,
            asset=asset,
            amount_minor=amount_minor,
            note=body.note,
        )
    )
    return _one_request(wallet, principal.wallet_user_id, created.id)


@router.post(
    "/requests/{request_id}/pay", status_code=status.HTTP_201_CREATED, response_model=OperationRead
)
async def pay_money_request(
    request: Request,
    response: Response,
    request_id: IdPath,
    wallet: WalletDep,
    principal: PrincipalDep,
    key: KeyDep,
) -> OperationRead:
    """Pay a request made of the user: the amount is sent at once."""
    return await answer_now(
        request,
        response,
        wallet,
        principal,
        lambda session: service.pay_request(
            session, wallet=wallet, principal=principal, request_id=request_id, idempotency_key=key
        ),
    )


@router.post("/requests/{request_id}/decline", response_model=s.MoneyRequestRead)
def decline_money_request(
    request_id: IdPath, wallet: WalletDep, principal: PrincipalDep
) -> s.MoneyRequestRead:
    """Decline a request made of the user."""
    wallet.database.run(
        lambda session: service.answer_request(
            session, principal=principal, request_id=request_id, answer="declined"
        )
    )
    return _one_request(wallet, principal.wallet_user_id, request_id)


@router.post("/requests/{request_id}/cancel", response_model=s.MoneyRequestRead)
def cancel_money_request(
    request_id: IdPath, wallet: WalletDep, principal: PrincipalDep
) -> s.MoneyRequestRead:
    """Withdraw a request the user made."""
    wallet.database.run(
        lambda session: service.answer_request(
            session, principal=principal, request_id=request_id, answer="cancelled"
        )
    )
    return _one_request(wallet, principal.wallet_user_id, request_id)


def payment_link(request: Request, handle: str) -> str:
    return str(request.base_url).rstrip("/") + f"/pay/{handle}"


def qr_svg(link: str) -> str:
    """The QR code of a payment link as an SVG document (drawn by segno)."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="svg", scale=6, border=2, dark="#111827")
    return buffer.getvalue().decode()


def _handle(wallet: Wallet, user_id: int) -> str:
    return wallet.database.run(lambda session: session.get_one(User, user_id).handle, write=False)


@router.get("/receive", response_model=s.ReceiveRead)
def get_payment_link(request: Request, wallet: WalletDep, principal: PrincipalDep) -> s.ReceiveRead:
    """The user's payment link and QR code: they open the send page with this wallet filled in."""
    handle = _handle(wallet, principal.wallet_user_id)
    return s.ReceiveRead(
        handle=handle, link=payment_link(request, handle), qr_svg=f"{PREFIX}/receive/qr.svg"
    )


@router.get("/receive/qr.svg", response_class=Response)
def get_payment_link_qr(request: Request, wallet: WalletDep, principal: PrincipalDep) -> Response:
    """The QR code of the user's payment link."""
    handle = _handle(wallet, principal.wallet_user_id)
    return Response(qr_svg(payment_link(request, handle)), media_type="image/svg+xml")
