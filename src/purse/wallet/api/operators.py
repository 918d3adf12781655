"""JSON routes for operators: every wallet's balance at one moment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from purse.deps import require
from purse.identity.sessions import Authenticated
from purse.operations.schemas import Money
from purse.wallet import queries
from purse.wallet import schemas as s
from purse.wallet.api.common import WalletDep

router = APIRouter(prefix="/v1/admin", tags=["operators"])


@router.get("/balances", response_model=s.AllBalancesRead)
def list_all_balances(
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
        total=Money.of(total, asset.code, wallet.assets),
        wallets=[
            s.WalletBalanceRead(
                handle=item.handle,
                balance=Money.of(item.balance_minor, asset.code, wallet.assets),
                available=Money.of(item.available_minor, asset.code, wallet.assets),
            )
            for item in found
        ],
    )
