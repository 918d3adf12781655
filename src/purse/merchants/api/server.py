"""The routes of a merchant's server, with a secret key: payments, capture, void, refunds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.orm import Session

from purse.deps import (
    DatabaseDep,
    IdempotencyKeyDep,
    OperationsDep,
)
from purse.merchants import capture, errors, payments, queries, refunds
from purse.merchants import schemas as s
from purse.merchants.api.common import (
    KeyPrincipalDep,
    balance_reads,
    require_read,
    require_scope,
)
from purse.merchants.payments import PaymentRecord
from purse.merchants.rules import CaptureMethod, KeyMode, KeyScope, PaymentStatus, RefundReason
from purse.models import utc_now
from purse.money.amounts import parse_amount
from purse.operations.context import Operations
from purse.operations.schemas import AmountIn, Money

router = APIRouter(prefix="/v1/merchant", tags=["merchant API"])

ReferencePath = Annotated[str, Path(max_length=32)]


@router.get("", response_model=s.KeyMerchantRead)
def key_merchant(principal: KeyPrincipalDep, database: DatabaseDep) -> s.KeyMerchantRead:
    """The merchant this key belongs to, and the key's mode and scopes (any scope)."""
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id = principal.merchant_id
    merchant = database.run(
        lambda session: queries.merchant(session, merchant_id=merchant_id), write=False
    )
    return s.KeyMerchantRead(
        merchant_id=merchant.id,
        name_en=merchant.name_en,
        name_zh=merchant.name_zh,
        mode=KeyMode(principal.mode),
        scopes=[scope for scope in KeyScope if scope.value in principal.scopes],
    )


def _payment_read(payment: PaymentRecord, operations: Operations) -> s.PaymentRead:
    return s.PaymentRead(
        reference=payment.reference,
        mode=KeyMode(payment.mode),
        status=PaymentStatus(payment.status),
        amount=Money.of(payment.amount_minor, payment.asset, operations.assets),
        description=payment.description,
        order_reference=payment.order_reference,
        metadata=payment.metadata,
        capture_method=CaptureMethod(payment.capture_method),
        approve_by=payment.approve_by,
        created_at=payment.created_at,
        authorized_at=payment.authorized_at,
        authorized_until=payment.authorized_until,
        captured=Money.of(payment.captured_minor, payment.asset, operations.assets),
        captured_at=payment.captured_at,
        fulfilment_reference=payment.fulfilment_reference,
        refunded=Money.of(payment.refunded_minor, payment.asset, operations.assets),
        released_at=payment.released_at,
    )


@router.post("/payments", status_code=status.HTTP_201_CREATED, response_model=s.PaymentRead)
def create_payment(
    body: s.PaymentCreate,
    response: Response,
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
    key: IdempotencyKeyDep,
) -> s.PaymentRead:
    """Ask for a payment; the customer approves it at checkout (scope ``payments``).

    The same Idempotency-Key with the same request answers with the first payment
    (``Idempotent-Replayed: true``); with another request, ``idempotency_key_reused``.
    """
    require_scope(principal, KeyScope.payments)
    assert principal.merchant_id and principal.mode and principal.key_id
    merchant_id, mode, key_id = principal.merchant_id, principal.mode, principal.key_id
    asset = operations.offered(body.amount.currency)
    request = payments.PaymentRequest(
        asset=asset.code,
        amount_minor=parse_amount(body.amount.value, asset),
        description=body.description,
        order_reference=body.order_reference,
        metadata=body.metadata,
        capture_method=body.capture_method,
        approve_within_seconds=body.approve_within_seconds,
    )
    payment, replayed = database.run(
        lambda session: payments.create_payment(
            session,
            merchant_id=merchant_id,
            mode=mode,
            key_id=key_id,
            idempotency_key=key,
            request=request,
        )
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _payment_read(payment, operations)


@router.get("/payments", response_model=s.PaymentList)
def list_payments(
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
    status: PaymentStatus | None = None,
    order_reference: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> s.PaymentList:
    """The merchant's payments in the key's mode, newest first (scope ``read`` or
    ``payments``); filter by status or by your order reference."""
    require_read(principal)
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id, mode = principal.merchant_id, principal.mode
    page = database.run(
        lambda session: payments.payments_for_key(
            session,
            merchant_id=merchant_id,
            mode=mode,
            status=status,
            order_reference=order_reference,
            cursor=cursor,
            limit=limit,
        ),
        write=False,
    )
    return s.PaymentList(
        items=[_payment_read(payment, operations) for payment in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/payments/{reference}", response_model=s.PaymentRead)
def get_payment(
    reference: ReferencePath,
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
) -> s.PaymentRead:
    """One of the merchant's payments, in the key's mode (scope ``read`` or ``payments``)."""
    require_read(principal)
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id, mode = principal.merchant_id, principal.mode
    payment = database.run(
        lambda session: payments.payment_for_key(
            session, merchant_id=merchant_id, mode=mode, reference=reference
        ),
        write=False,
    )
    return _payment_read(payment, operations)


def _amount_in(operations: Operations, amount: AmountIn | None) -> tuple[str, int] | None:
    """An amount a capture or refund names, parsed in its currency (None: all of it)."""
    if amount is None:
        return None
    asset = operations.assets.get(amount.currency)
    return asset.code, parse_amount(amount.value, asset)


def _answer(response: Response, replayed: bool) -> None:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"


@router.post("/payments/{reference}/capture", response_model=s.PaymentRead)
def capture_payment(
    reference: ReferencePath,
    body: s.PaymentCapture,
    response: Response,
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
    key: IdempotencyKeyDep,
) -> s.PaymentRead:
    """Take the money held for an authorized payment, all of it or part (scope ``payments``).

    Never more than authorized (``capture_exceeds_authorization``); the rest of the hold
    is released. In "no charge without fulfilment" mode, ``fulfilment_reference`` is
    required. After the authorization window: ``payment_authorization_expired``.
    """
    require_scope(principal, KeyScope.payments)
    assert principal.merchant_id and principal.mode
    merchant_id, mode = principal.merchant_id, principal.mode
    amount = _amount_in(operations, body.amount)
    payment, replayed = database.run(
        lambda session: capture.capture(
            session,
            operations=operations,
            principal=principal,
            merchant_id=merchant_id,
            mode=mode,
            reference=reference,
            amount=amount,
            fulfilment_reference=body.fulfilment_reference,
            idempotency_key=key,
            now=utc_now(),
        )
    )
    _answer(response, replayed)
    return _payment_read(payment, operations)


@router.post("/payments/{reference}/void", response_model=s.PaymentRead)
def void_payment(
    reference: ReferencePath,
    response: Response,
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
    key: IdempotencyKeyDep,
) -> s.PaymentRead:
    """Release the money held for an authorized payment (scope ``payments``).

    A captured payment cannot be voided (``payment_already_captured``): refund it.
    """
    require_scope(principal, KeyScope.payments)
    assert principal.merchant_id and principal.mode
    merchant_id, mode = principal.merchant_id, principal.mode
    payment, replayed = database.run(
        lambda session: capture.void(
            session,
            operations=operations,
            principal=principal,
            merchant_id=merchant_id,
            mode=mode,
            reference=reference,
            idempotency_key=key,
            now=utc_now(),
        )
    )
    _answer(response, replayed)
    return _payment_read(payment, operations)


def _refund_read(refund: refunds.RefundRecord, operations: Operations) -> s.RefundRead:
    return s.RefundRead(
        reference=refund.reference,
        payment_reference=refund.payment_reference,
        amount=Money.of(refund.amount_minor, refund.asset, operations.assets),
        reason=RefundReason(refund.reason),
        status="succeeded",
        created_at=refund.created_at,
    )


@router.post(
    "/payments/{reference}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=s.RefundRead,
)
def refund_payment(
    reference: ReferencePath,
    body: s.RefundCreate,
    response: Response,
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
    key: IdempotencyKeyDep,
) -> s.RefundRead:
    """Give money back from a captured payment (scope ``refunds``): back in the customer's
    wallet at once. Several per payment, never more in all than was captured."""
    require_scope(principal, KeyScope.refunds)
    assert principal.merchant_id and principal.mode
    merchant_id, mode = principal.merchant_id, principal.mode
    amount = _amount_in(operations, body.amount)
    refund, _payment, replayed = database.run(
        lambda session: refunds.refund(
            session,
            operations=operations,
            principal=principal,
            merchant_id=merchant_id,
            mode=mode,
            reference=reference,
            amount=amount,
            reason=body.reason,
            idempotency_key=key,
            now=utc_now(),
        )
    )
    _answer(response, replayed)
    return _refund_read(refund, operations)


@router.get("/payments/{reference}/refunds", response_model=list[s.RefundRead])
def list_refunds(
    reference: ReferencePath,
    principal: KeyPrincipalDep,
    database: DatabaseDep,
    operations: OperationsDep,
) -> list[s.RefundRead]:
    """A payment's refunds, oldest first (scope ``read``, ``payments`` or ``refunds``)."""
    if not principal.scopes & {scope.value for scope in KeyScope}:
        raise errors.ApiKeyScopeMissing(scope=KeyScope.read.value)
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id, mode = principal.merchant_id, principal.mode

    def read(session: Session) -> list[refunds.RefundRecord]:
        payment = payments.payment_for_key(
            session, merchant_id=merchant_id, mode=mode, reference=reference
        )
        return refunds.refunds_of(session, payment=payment)

    return [_refund_read(refund, operations) for refund in database.run(read, write=False)]


@router.get("/balance", response_model=list[s.SettlementBalanceRead])
def get_balance(
    principal: KeyPrincipalDep, database: DatabaseDep, operations: OperationsDep
) -> list[s.SettlementBalanceRead]:
    """The merchant's settlement balance in the key's mode, per currency (scope ``read`` or
    ``payments``)."""
    require_read(principal)
    assert principal.merchant_id is not None and principal.mode is not None
    merchant_id, mode = principal.merchant_id, principal.mode
    found = database.run(
        lambda session: queries.settlement_balances(session, merchant_id=merchant_id, mode=mode),
        write=False,
    )
    return balance_reads(found, mode, operations)
