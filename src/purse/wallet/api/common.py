"""What every wallet route shares: the wallet, the principal, the idempotency key, answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from purse.deps import IdempotencyKeyDep, WalletPrincipalDep
from purse.identity.principal import Principal
from purse.money.amounts import parse_amount
from purse.operations.queries import operation_for, view_of
from purse.operations.schemas import AmountIn, OperationRead
from purse.operations.service import OperationResult
from purse.problems import request_locale
from purse.wallet.context import Wallet

PREFIX = "/v1/wallet"


async def get_wallet(request: Request) -> Wallet:
    wallet: Wallet = request.app.state.wallet
    return wallet


WalletDep = Annotated[Wallet, Depends(get_wallet)]
PrincipalDep = WalletPrincipalDep


KeyDep = IdempotencyKeyDep


def amount_of(wallet: Wallet, amount: AmountIn) -> tuple[str, int]:
    asset = wallet.offered(amount.currency)
    return asset.code, parse_amount(amount.value, asset)


async def answer_now(
    request: Request,
    response: Response,
    wallet: Wallet,
    principal: Principal,
    use_case: Callable[[Session], OperationResult],
) -> OperationRead:
    """Run a use case that completes at once, and read its answer in the same transaction.

    Awaited on the event loop (its routes are ``async def``): on SQLite the use case
    waits for its group commit with no worker thread held, which a payment would
    otherwise pay for twice (a hop to the thread, and a thread waiting).
    """

    def run(session: Session) -> tuple[bool, OperationRead]:
        result = use_case(session)
        view = view_of(session, operation=result.operation, user_id=principal.wallet_user_id)
        return result.replayed, OperationRead.of(view, wallet.assets, request_locale(request))

    replayed, read = await wallet.database.run_async(run)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return read


def answer_later(
    request: Request,
    response: Response,
    wallet: Wallet,
    principal: Principal,
    result: OperationResult,
) -> OperationRead:
    """The answer to an operation that completes later (read after the provider was asked).

    A 202: ``Location`` is where to follow its progress.
    """
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"{PREFIX}/operations/{result.operation.reference}"
    view = wallet.database.run(
        lambda session: operation_for(
            session, principal=principal, reference=result.operation.reference
        ),
        write=False,
    )
    return OperationRead.of(view, wallet.assets, request_locale(request))
