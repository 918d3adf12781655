"""The merchant dashboard's payments: the balance, the payments with search and filters, and
one payment's timeline with capture, void and refund.

Only the merchant's team sees any of it (anyone else: "not found"); capturing, voiding and
refunding need a role that manages payments (owner, developer, support). Each action is
the same use case the API runs, with the member of staff as its initiator: the payment's
timeline records who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from purse.db import Database
from purse.deps import DatabaseDep, IdPath, OperationsDep
from purse.errors import PurseError
from purse.i18n import N_
from purse.identity.principal import Principal
from purse.identity.sessions import Authenticated
from purse.merchants import capture, errors, payments, queries, refunds
from purse.merchants.payments import PaymentRecord
from purse.merchants.queries import Membership
from purse.merchants.rules import KeyMode, PaymentStatus, RefundReason, role_allows
from purse.models import utc_now
from purse.money.amounts import parse_typed_amount
from purse.operations.context import Operations
from purse.wallet.pages.common import new_key
from purse.web.forms import form_action
from purse.web.security import check_csrf
from purse.web.templating import page_locale
from purse.web.views import page, redirect, require_signed_in

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]
ReferencePath = Annotated[str, Path(max_length=32)]
T = TypeVar("T")

STATUS_FILTERS = tuple(status.value for status in PaymentStatus)
LABELS: dict[str, Any] = {
    "payment_status_labels": {
        "requires_approval": N_("Waiting for the customer"),
        "authorized": N_("Held: capture it"),
        "captured": N_("Captured"),
        "voided": N_("Voided"),
        "expired": N_("Expired"),
    },
    "payment_event_labels": {
        "created": N_("Asked for by your server"),
        "authorized": N_("Approved by the customer: money held"),
        "captured": N_("Captured"),
        "voided": N_("Voided: the hold released"),
        "expired": N_("The hold ran out and was released"),
        "refunded": N_("Refunded"),
    },
    "payment_done_labels": {
        "captured": N_("Captured. The customer has been told."),
        "voided": N_("Voided. The money is back in the customer's wallet."),
        "refunded": N_("Refunded. The money is back in the customer's wallet."),
    },
    "actor_labels": {
        "api_key": N_("your API key"),
        "customer": N_("the customer"),
        "user": N_("your team"),
        "system": N_("purse"),
    },
    "refund_reason_labels": {
        "requested_by_customer": N_("The customer asked"),
        "duplicate": N_("Charged twice"),
        "not_fulfilled": N_("Not delivered"),
        "fraudulent": N_("Fraud"),
        "other": N_("Other"),
    },
    "role_labels": {
        "owner": N_("Owner"),
        "developer": N_("Developer"),
        "support": N_("Support"),
        "viewer": N_("Viewer"),
    },
    "delivery_status_labels": {
        "pending": N_("Sending"),
        "succeeded": N_("Delivered"),
        "failed": N_("Failed"),
    },
}


def member_of(
    database: Database, current: Authenticated, merchant_id: int, permission: str
) -> Membership:
    """The caller's membership of the merchant, allowing ``permission`` (or not found / 403)."""
    return database.run(
        lambda session: queries.merchant_for_member(
            session, user_id=current.user_id, merchant_id=merchant_id, permission=permission
        ),
        write=False,
    )


def staff_page(
    request: Request, database: Database, template: str, membership: Membership, **context: Any
) -> HTMLResponse:
    """A dashboard page: the merchant, the caller's role and what it allows, its tabs."""
    return page(
        request,
        database,
        template,
        nav="merchant",
        page_class="wide dashboard",
        merchant=membership.merchant,
        role=membership.role,
        may=lambda permission: role_allows(membership.role, permission),
        **LABELS,
        **context,
    )


@router.get("/merchant", response_class=HTMLResponse)
def merchants(request: Request, database: DatabaseDep) -> Response:
    """The merchants the person works for; with one, straight to it."""
    current = require_signed_in(request, database)
    found = database.run(
        lambda session: queries.memberships(session, user_id=current.user_id), write=False
    )
    if len(found) == 1:
        return redirect(f"/merchant/{found[0].merchant.id}")
    return page(request, database, "merchant_list.html", nav="merchant", memberships=found)


@router.get("/merchant/{merchant_id}", response_class=HTMLResponse)
def payments_page(
    merchant_id: IdPath,
    request: Request,
    database: DatabaseDep,
    operations: OperationsDep,
    mode: KeyMode = KeyMode.live,
    status: Annotated[str, Query(max_length=24)] = "",
    q: Annotated[str, Query(max_length=128)] = "",
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """The balance, and the payments of one mode, newest first, searchable."""
    current = require_signed_in(request, database)
    membership = member_of(database, current, merchant_id, "merchant:read")
    chosen = PaymentStatus(status) if status in STATUS_FILTERS else None
    text = q.strip()

    def read(session: Session) -> tuple[Any, Any]:
        balances = queries.settlement_balances(session, merchant_id=merchant_id, mode=mode.value)
        found = payments.payments_for_key(
            session,
            merchant_id=merchant_id,
            mode=mode.value,
            status=chosen,
            order_reference=text or None,
            reference=text or None,
            cursor=cursor,
            limit=25,
        )
        return balances, found

    balances, found = database.run(read, write=False)
    return staff_page(
        request,
        database,
        "merchant_payments.html",
        membership,
        tab="payments",
        mode=mode.value,
        status=status,
        q=text,
        balances=balances,
        found=found,
        statuses=STATUS_FILTERS,
        assets=operations.assets,
    )


def _payment_page(
    request: Request,
    database: Database,
    operations: Operations,
    membership: Membership,
    reference: str,
    *,
    error: PurseError | None = None,
    done: str = "",
) -> HTMLResponse:
    merchant_id = membership.merchant.id

    def read(session: Session) -> tuple[PaymentRecord, Any, Any]:
        found = payments.payment_of_merchant(session, merchant_id=merchant_id, reference=reference)
        return (
            found,
            payments.timeline(session, found.id),
            refunds.refunds_of(session, payment=found),
        )

    found, timeline, given = database.run(read, write=False)
    response = staff_page(
        request,
        database,
        "merchant_payment.html",
        membership,
        tab="payments",
        payment=found,
        timeline=timeline,
        refunds=given,
        reasons=[reason.value for reason in RefundReason],
        idempotency_key=new_key(),
        error=error,
        done=done,
    )
    if error is not None:
        response.status_code = error.status
    return response


@router.get("/merchant/{merchant_id}/payments/{reference}", response_class=HTMLResponse)
def payment_page(
    merchant_id: IdPath,
    reference: ReferencePath,
    request: Request,
    database: DatabaseDep,
    operations: OperationsDep,
    done: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    """One payment: what was authorized, captured and refunded, by whom and when."""
    current = require_signed_in(request, database)
    membership = member_of(database, current, merchant_id, "merchant:read")
    return _payment_page(request, database, operations, membership, reference, done=done)


def _act(
    request: Request,
    database: Database,
    operations: Operations,
    merchant_id: int,
    reference: str,
    csrf_token: str,
    action: str,
    run: Callable[[Session, Principal, PaymentRecord], object],
) -> Response:
    """A payment action from the dashboard: CSRF, the role, then the use case."""
    check_csrf(request, csrf_token)
    current = require_signed_in(request, database)
    membership = member_of(database, current, merchant_id, "payments:manage")
    principal = Principal.of_session(
        current, address=request.client.host if request.client else None
    )

    def use_case(session: Session) -> object:
        found = payments.payment_of_merchant(session, merchant_id=merchant_id, reference=reference)
        return run(session, principal, found)

    return form_action(
        lambda: database.run(use_case),
        then=lambda _done: redirect(f"/merchant/{merchant_id}/payments/{reference}?done={action}"),
        again=lambda error: _payment_page(
            request, database, operations, membership, reference, error=error
        ),
    )


def _amount(request: Request, operations: Operations, found: PaymentRecord, typed: str) -> Any:
    """An amount typed in the payment's currency (empty: all of it)."""
    if not typed.strip():
        return None
    asset = operations.assets.get(found.asset)
    return asset.code, parse_typed_amount(typed, asset, page_locale(request))


@router.post("/merchant/{merchant_id}/payments/{reference}/capture")
def capture_form(
    merchant_id: IdPath,
    reference: ReferencePath,
    request: Request,
    database: DatabaseDep,
    operations: OperationsDep,
    csrf_token: Field = "",
    idempotency_key: Field = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    fulfilment_reference: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    def run(session: Session, principal: Principal, found: PaymentRecord) -> object:
        return capture.capture(
            session,
            operations=operations,
            principal=principal,
            merchant_id=merchant_id,
            mode=found.mode,
            reference=reference,
            amount=_amount(request, operations, found, amount),
            fulfilment_reference=fulfilment_reference.strip() or None,
            idempotency_key=idempotency_key,
            now=utc_now(),
        )

    return _act(request, database, operations, merchant_id, reference, csrf_token, "captured", run)


@router.post("/merchant/{merchant_id}/payments/{reference}/void")
def void_form(
    merchant_id: IdPath,
    reference: ReferencePath,
    request: Request,
    database: DatabaseDep,
    operations: OperationsDep,
    csrf_token: Field = "",
    idempotency_key: Field = "",
) -> Response:
    def run(session: Session, principal: Principal, found: PaymentRecord) -> object:
        return capture.void(
            session,
            operations=operations,
            principal=principal,
            merchant_id=merchant_id,
            mode=found.mode,
            reference=reference,
            idempotency_key=idempotency_key,
            now=utc_now(),
        )

    return _act(request, database, operations, merchant_id, reference, csrf_token, "voided", run)


@router.post("/merchant/{merchant_id}/payments/{reference}/refund")
def refund_form(
    merchant_id: IdPath,
    reference: ReferencePath,
    request: Request,
    database: DatabaseDep,
    operations: OperationsDep,
    csrf_token: Field = "",
    idempotency_key: Field = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=32)] = RefundReason.requested_by_customer.value,
) -> Response:
    def run(session: Session, principal: Principal, found: PaymentRecord) -> object:
        if reason not in {r.value for r in RefundReason}:
            raise errors.RefundReasonInvalid()
        return refunds.refund(
            session,
            operations=operations,
            principal=principal,
            merchant_id=merchant_id,
            mode=found.mode,
            reference=reference,
            amount=_amount(request, operations, found, amount),
            reason=RefundReason(reason),
            idempotency_key=idempotency_key,
            now=utc_now(),
        )

    return _act(request, database, operations, merchant_id, reference, csrf_token, "refunded", run)
