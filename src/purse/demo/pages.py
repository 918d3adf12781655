"""The demo storefront's pages: buy a coffee, watch the webhooks arrive, ship or refund it.

Mounted only by ``purse serve --demo`` (never in production). Every money step goes
through purse's public API with the shop's test key, as a real shop's server would.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from purse.assembly import Purse
from purse.demo.shop import MENU, Storefront, open_storefront
from purse.deps import DatabaseDep
from purse.web.views import page, redirect

router = APIRouter(include_in_schema=False)
ReferencePath = Annotated[str, Path(max_length=32)]


def _shop(request: Request) -> Storefront:
    found: Storefront = request.app.state.demo_shop
    return found


@router.get("/demo/shop", response_class=HTMLResponse)
def shop_page(request: Request, database: DatabaseDep) -> Response:
    """The menu, this run's orders as the API tells them, and the webhooks heard."""
    shop = _shop(request)
    orders: list[dict[str, Any]] = []
    for reference in reversed(shop.orders[-10:]):
        found = shop.call("GET", f"/v1/merchant/payments/{reference}")
        if found.status_code == 200:
            orders.append(found.json())
    return page(
        request,
        database,
        "demo_shop.html",
        page_class="demo-shop",
        menu=MENU,
        orders=orders,
        received=list(shop.received),
        key_last4=shop.key_secret[-4:],
    )


@router.post("/demo/shop/buy")
def buy(request: Request, item: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Ask purse for a payment (test mode), and send the customer to its checkout."""
    shop = _shop(request)
    if item not in MENU:
        return redirect("/demo/shop")
    name_en, _name_zh, price = MENU[item]
    made = shop.call(
        "POST",
        "/v1/merchant/payments",
        {
            "amount": {"value": price, "currency": "CNY"},
            "description": name_en,
            "order_reference": f"WEB-{uuid.uuid4().hex[:6].upper()}",
            "capture_method": "manual",
        },
        key=str(uuid.uuid4()),
    )
    if made.status_code != 201:
        return redirect("/demo/shop")
    reference = made.json()["reference"]
    shop.orders.append(reference)
    return redirect(f"/checkout/{reference}")


@router.post("/demo/shop/orders/{reference}/{action}")
def act(request: Request, reference: ReferencePath, action: ReferencePath) -> Response:
    """Ship (capture, citing a shipment) or refund an order, through the API."""
    shop = _shop(request)
    if reference in shop.orders and action in ("capture", "refund", "void"):
        path = f"/v1/merchant/payments/{reference}"
        if action == "capture":
            shop.call(
                "POST",
                f"{path}/capture",
                {"fulfilment_reference": "Counter pick-up"},
                key=str(uuid.uuid4()),
            )
        elif action == "refund":
            shop.call(
                "POST",
                f"{path}/refunds",
                {"reason": "requested_by_customer"},
                key=str(uuid.uuid4()),
            )
        else:
            shop.call("POST", f"{path}/void", key=str(uuid.uuid4()))
    return redirect("/demo/shop")


@router.post("/demo/shop/webhooks")
async def webhook(request: Request) -> Response:
    """The shop's webhook receiver: verified with the standardwebhooks library."""
    body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    ok = _shop(request).hear(body, headers)
    return Response(status_code=204 if ok else 400)


def mount(app: FastAPI, purse: Purse, *, base_url: str) -> Storefront | None:
    """Open the storefront (a fresh test key and webhook endpoint) and serve its pages."""
    shop = open_storefront(purse, base_url=base_url)
    if shop is not None:
        app.state.demo_shop = shop
        app.include_router(router)
    return shop
