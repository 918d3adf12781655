"""The wallet's home page: balances, what is pending, recent activity, spending."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from purse.deps import DatabaseDep
from purse.identity.models import User
from purse.models import utc_now
from purse.wallet import queries
from purse.wallet.api.common import WalletDep
from purse.wallet.pages.common import wallet_page
from purse.web.views import signed_in_principal

router = APIRouter(include_in_schema=False)


@router.get("/home", response_class=HTMLResponse)
def home(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    user_id = signed_in_principal(request, database).wallet_user_id
    now = utc_now()

    def read(session: Session) -> dict[str, Any]:
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
    return wallet_page(
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
