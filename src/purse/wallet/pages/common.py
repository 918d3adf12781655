"""What every wallet page shares: rendering with the wallet's labels, amounts from forms, keys.

Every form that moves money carries an idempotency key made when the form was
rendered, so a double click or a browser retry replays the first result instead
of moving money twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.i18n import translate
from purse.money.amounts import parse_amount
from purse.operations import kinds
from purse.operations.queries import OperationView
from purse.operations.service import OperationResult
from purse.wallet.context import Wallet
from purse.web.templating import page_locale
from purse.web.views import page, redirect

STATUS_LABELS = {
    "pending": "Pending",
    "completed": "Completed",
    "failed": "Failed",
    "open": "Waiting",
    "paid": "Paid",
    "declined": "Declined",
    "cancelled": "Cancelled",
    "expired": "Expired",
    "queued": "Queued",
    "running": "Preparing",
    "ready": "Ready",
}
EVENT_LABELS = {
    "created": "Created",
    "held": "Money reserved in your wallet",
    "submitted": "Sent to the bank",
    "provider_silent": "The bank has not answered yet; we keep asking",
    "posted": "Completed",
    "voided": "Reserved money released",
    "expired": "Reservation expired and released",
    "failed": "Failed",
    "needs_review": "Passed to support to check",
}
DESCRIPTIONS = {
    "in": "From {name}",
    "out": "To {name}",
    "top_up": "Top-up from {source}",
    "withdrawal": "Withdrawal to {source}",
    "convert": "{from_asset} to {to_asset}",
}


def describer(locale: str) -> Callable[[OperationView], str]:
    """One line about an operation for a list: "To @li_na", "Top-up from Visa ••4242"."""

    def describe(view: OperationView) -> str:
        if view.kind == "convert":
            return translate(DESCRIPTIONS["convert"], locale).format(
                from_asset=view.asset, to_asset=view.to_asset
            )
        if view.kind in ("top_up", "withdrawal"):
            source = view.funding_source
            label = f"{source.brand} ••{source.last4}" if source else "—"
            return translate(DESCRIPTIONS[view.kind], locale).format(source=label)
        name = f"@{view.counterparty.handle}" if view.counterparty else "?"
        template = DESCRIPTIONS.get(view.direction, DESCRIPTIONS["out"])
        return translate(template, locale).format(name=name)

    return describe


def wallet_page(
    request: Request,
    database: Database,
    wallet: Wallet,
    template: str,
    *,
    nav: str,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    """A signed-in wallet page, with the labels its templates use."""
    return page(
        request,
        database,
        template,
        status_code=status_code,
        nav=nav,
        assets=wallet.settings.wallet_assets,
        kind_labels={kind.name: kind.label for kind in kinds.registered()},
        status_labels=STATUS_LABELS,
        event_labels=EVENT_LABELS,
        describe=describer(page_locale(request)),
        **context,
    )


def amount_from_form(wallet: Wallet, amount: str, currency: str) -> tuple[str, int]:
    """The asset and minor units of an amount typed in a form."""
    asset = wallet.offered(currency)
    return asset.code, parse_amount(amount.strip().replace(",", ""), asset)


def new_key() -> str:
    """An idempotency key for a form that moves money, made when the form is shown."""
    return str(uuid.uuid4())


def to_receipt(result: OperationResult, flag: str) -> Response:
    return redirect(f"/activity/{result.operation.reference}?{flag}=1")
