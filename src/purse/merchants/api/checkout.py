"""The customer's routes of a payment: see it at checkout, approve it.

A person's token only: a merchant's key is refused here (``session_invalid``), so a
merchant can never approve its own payment for a customer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from purse.deps import IdempotencyKeyDep, OperationsDep, WalletPrincipalDep
from purse.merchants import checkout
from purse.merchants import schemas as s
from purse.merchants.checkout import Checkout
from purse.merchants.rules import CaptureMethod, PaymentStatus
from purse.models import utc_now
from purse.operations.context import Operations
from purse.operations.schemas import MerchantNameRead, Money
from purse.problems import request_locale

router = APIRouter(prefix="/v1/checkout", tags=["checkout"])

ReferencePath = Annotated[str, Path(max_length=32)]


def checkout_read(
    found: Checkout, *, viewer_id: int, operations: Operations, locale: str
) -> s.CheckoutRead:
    payment, merchant = found.payment, found.merchant
    assets = operations.assets
    return s.CheckoutRead(
        reference=payment.reference,
        test_mode=found.test_mode,
        status=PaymentStatus(payment.status),
        merchant=MerchantNameRead(
            name=merchant.name(locale),
            name_en=merchant.name_en,
            name_zh=merchant.name_zh,
            logo_initial=merchant.logo_initial,
        ),
        amount=Money.of(payment.amount_minor, payment.asset, assets),
        description=payment.description,
        order_reference=payment.order_reference,
        capture_method=CaptureMethod(payment.capture_method),
        approve_by=payment.approve_by,
        yours=payment.customer_user_id == viewer_id,
        authorized_until=payment.authorized_until,
        captured=Money.of(payment.captured_minor, payment.asset, assets),
        refunded=Money.of(payment.refunded_minor, payment.asset, assets),
        fulfilment_reference=payment.fulfilment_reference,
    )


@router.get("/{reference}", response_model=s.CheckoutRead)
def get_checkout(
    reference: ReferencePath,
    request: Request,
    principal: WalletPrincipalDep,
    operations: OperationsDep,
) -> s.CheckoutRead:
    """A payment a shop asks you for: who, what, how much. Once someone approved it, only
    they see it."""
    viewer_id = principal.wallet_user_id
    found = operations.database.run(
        lambda session: checkout.checkout(
            session, reference=reference, viewer_id=viewer_id, now=utc_now()
        ),
        write=False,
    )
    return checkout_read(
        found, viewer_id=viewer_id, operations=operations, locale=request_locale(request)
    )


@router.post("/{reference}/approve", response_model=s.CheckoutRead)
def approve_payment(
    reference: ReferencePath,
    request: Request,
    response: Response,
    principal: WalletPrincipalDep,
    operations: OperationsDep,
    key: IdempotencyKeyDep,
) -> s.CheckoutRead:
    """Approve the payment: the money is held on your wallet until the shop takes it (or
    taken at once, for automatic capture). From the large-transfer amount on, confirm
    your password first (``step_up_required``)."""
    viewer_id = principal.wallet_user_id
    found, replayed = operations.database.run(
        lambda session: checkout.approve(
            session,
            operations=operations,
            principal=principal,
            reference=reference,
            idempotency_key=key,
            now=utc_now(),
        )
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return checkout_read(
        found, viewer_id=viewer_id, operations=operations, locale=request_locale(request)
    )
