"""JSON routes for money to and from banks: top-ups and withdrawals.

Both answer 202: the operation is written and the provider is asked after the
commit, outside any transaction (see :mod:`purse.wallet.banking`); its outcome
comes later, by callback or by the follow-up job.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from purse.operations.schemas import OperationRead
from purse.wallet import banking
from purse.wallet import schemas as s
from purse.wallet.api.common import (
    PREFIX,
    KeyDep,
    PrincipalDep,
    WalletDep,
    amount_of,
    answer_later,
)

router = APIRouter(prefix=PREFIX, tags=["wallet"])


@router.post("/top-ups", status_code=status.HTTP_202_ACCEPTED, response_model=OperationRead)
def create_top_up(
    request: Request,
    response: Response,
    body: s.FundingCreate,
    wallet: WalletDep,
    principal: PrincipalDep,
    key: KeyDep,
) -> OperationRead:
    """Add money from a linked card or account: pending until the bank settles it."""
    asset, amount_minor = amount_of(wallet, body.amount)
    result = wallet.database.run(
        lambda session: banking.start_top_up(
            session,
            wallet=wallet,
            principal=principal,
            funding_source_id=body.funding_source_id,
            asset=asset,
            amount_minor=amount_minor,
            idempotency_key=key,
        )
    )
    banking.submit_if_unsent(wallet, result.operation)
    return answer_later(request, response, wallet, principal, result)


@router.post("/withdrawals", status_code=status.HTTP_202_ACCEPTED, response_model=OperationRead)
def create_withdrawal(
    request: Request,
    response: Response,
    body: s.FundingCreate,
    wallet: WalletDep,
    principal: PrincipalDep,
    key: KeyDep,
) -> OperationRead:
    """Move money to a linked card or account: held until the bank pays it, released if not."""
    asset, amount_minor = amount_of(wallet, body.amount)
    result = wallet.database.run(
        lambda session: banking.start_withdrawal(
            session,
            wallet=wallet,
            principal=principal,
            funding_source_id=body.funding_source_id,
            asset=asset,
            amount_minor=amount_minor,
            idempotency_key=key,
        )
    )
    banking.submit_if_unsent(wallet, result.operation)
    return answer_later(request, response, wallet, principal, result)
