"""The hosted checkout: the page where a customer sees what a shop asks and approves it.

``/checkout/{reference}`` is the link a shop sends its customer to. It works signed out
too, because of the QR code: on a computer, the page shows the payment and a QR code of
itself; the customer scans it with the phone they are signed in on, approves there, and
the computer's page updates by itself. Signed out, the page shows only the shop, what it
asks for and how much, and only while it waits; once someone approved it, nobody else
sees more than that it is done.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.deps import DatabaseDep, IdentityDep, OperationsDep
from purse.errors import PurseError
from purse.i18n import N_, translate
from purse.identity.principal import Principal
from purse.merchants import checkout, errors
from purse.merchants.checkout import Checkout
from purse.models import utc_now
from purse.operations.context import Operations
from purse.wallet.api.sending import qr_svg
from purse.wallet.pages.common import new_key, with_step_up
from purse.web.templating import page_locale
from purse.web.views import page, redirect, signed_in

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]
ReferencePath = Annotated[str, Path(max_length=32)]


def _checkout_link(request: Request, reference: str) -> str:
    return str(request.base_url).rstrip("/") + f"/checkout/{reference}"


def _found(
    database: Database, reference: str, viewer_id: int | None
) -> tuple[Checkout | None, bool]:
    """The payment as ``viewer_id`` may see it, and whether it exists at all.

    A payment someone else approved exists, but shows nothing to this viewer.
    """
    now = utc_now()
    try:
        return database.run(
            lambda session: checkout.checkout(
                session, reference=reference, viewer_id=viewer_id, now=now
            ),
            write=False,
        ), True
    except errors.PaymentNotFound:
        exists = database.run(
            lambda session: checkout.exists(session, reference=reference), write=False
        )
        if not exists:
            raise
        return None, True


def _checkout_page(
    request: Request,
    database: Database,
    operations: Operations,
    reference: str,
    *,
    error: PurseError | None = None,
    just: str = "",
) -> HTMLResponse:
    current = signed_in(request, database)
    viewer_id = current.user_id if current is not None else None
    found, _exists = _found(database, reference, viewer_id)
    return page(
        request,
        database,
        "checkout.html",
        status_code=422 if error is not None else 200,
        nav="home" if current is not None else None,
        page_class="checkout-page",
        found=found,
        reference=reference,
        signed_in=current is not None,
        yours=found is not None
        and viewer_id is not None
        and found.payment.customer_user_id == viewer_id,
        idempotency_key=new_key(),
        link=_checkout_link(request, reference),
        authorization_days=operations.settings.merchant_authorization_seconds // 86400,
        error=error,
        just=just,
    )


@router.get("/checkout/{reference}", response_class=HTMLResponse)
def checkout_page(
    reference: ReferencePath,
    request: Request,
    database: DatabaseDep,
    operations: OperationsDep,
    just: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    """The shop's payment, to approve (signed in) or to scan (signed out)."""
    return _checkout_page(request, database, operations, reference, just=just)


@router.get("/checkout/{reference}/qr.svg", response_class=Response)
def checkout_qr(reference: ReferencePath, request: Request, database: DatabaseDep) -> Response:
    """A QR code of the checkout page, to open it on a phone."""
    exists = database.run(
        lambda session: checkout.exists(session, reference=reference), write=False
    )
    if not exists:
        raise errors.PaymentNotFound()
    return Response(
        qr_svg(_checkout_link(request, reference)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store"},
    )


@router.post("/checkout/{reference}/approve", response_class=HTMLResponse)
def approve(
    reference: ReferencePath,
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    operations: OperationsDep,
    csrf_token: Field = "",
    idempotency_key: Field = "",
    password: Field = "",
    second_factor: Field = "",
) -> Response:
    """Approve: the money is held (or paid, for automatic capture). A large amount asks for
    the password first, then approves with the same key."""

    def run(principal: Principal) -> Checkout:
        approved, _replayed = database.run(
            lambda session: checkout.approve(
                session,
                operations=operations,
                principal=principal,
                reference=reference,
                idempotency_key=idempotency_key,
                now=utc_now(),
            )
        )
        return approved

    return with_step_up(
        request,
        database,
        identity,
        csrf_token=csrf_token,
        password=password,
        second_factor=second_factor,
        action=f"/checkout/{reference}/approve",
        fields={"idempotency_key": idempotency_key},
        nav="home",
        run=run,
        then=lambda _approved: redirect(f"/checkout/{reference}?just=approved"),
        again=lambda error: _checkout_page(request, database, operations, reference, error=error),
        summary=lambda: translate(N_("Approve the payment"), page_locale(request)),
    )
