"""What every wallet page shares: rendering with the wallet's labels, amounts from forms, keys.

Every form that moves money carries an idempotency key made when the form was
rendered, so a double click or a browser retry replays the first result instead
of moving money twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.errors import PurseError
from purse.i18n import N_, translate
from purse.identity.context import Identity
from purse.identity.errors import SecondFactorRequired, StepUpRequired
from purse.identity.pages.stepup import confirm_step_up, step_up_page
from purse.identity.principal import Principal
from purse.money.amounts import format_amount, parse_typed_amount
from purse.operations import kinds
from purse.operations.queries import OperationView
from purse.operations.service import OperationResult
from purse.wallet.context import Wallet
from purse.web.forms import form_action
from purse.web.security import check_csrf
from purse.web.templating import page_locale
from purse.web.views import page, redirect, require_signed_in

T = TypeVar("T")

STATUS_LABELS = {
    "pending": N_("Pending"),
    "completed": N_("Completed"),
    "failed": N_("Failed"),
    "open": N_("Waiting"),
    "paid": N_("Paid"),
    "declined": N_("Declined"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
    "queued": N_("Queued"),
    "running": N_("Preparing"),
    "ready": N_("Ready"),
}
EVENT_LABELS = {
    "created": N_("Created"),
    "held": N_("Money reserved in your wallet"),
    "submitted": N_("Sent to the bank"),
    "provider_silent": N_("The bank has not answered yet; we keep asking"),
    "posted": N_("Completed"),
    "voided": N_("Reserved money released"),
    "expired": N_("Reservation expired and released"),
    "failed": N_("Failed"),
    "needs_review": N_("Passed to support to check"),
    "refunded": N_("Money given back by the merchant"),
}
DESCRIPTIONS = {
    "in": N_("From {name}"),
    "out": N_("To {name}"),
    "top_up": N_("Top-up from {source}"),
    "withdrawal": N_("Withdrawal to {source}"),
    "convert": N_("{from_asset} to {to_asset}"),
    "refund": N_("Refund from {name}"),
}


def describer(locale: str) -> Callable[[OperationView], str]:
    """One line about an operation for a list: "To @li_na", "Top-up from Visa ••4242"."""

    def describe(view: OperationView) -> str:
        if view.kind == "convert":
            return translate(DESCRIPTIONS[view.kind], locale).format(
                from_asset=view.asset, to_asset=view.to_asset
            )
        if view.kind in ("top_up", "withdrawal"):
            source = view.funding_source
            label = f"{source.brand} ••{source.last4}" if source else "—"
            return translate(DESCRIPTIONS[view.kind], locale).format(source=label)
        if view.merchant_payment is not None:
            name = view.merchant_payment.merchant_name(locale)
            template = DESCRIPTIONS.get(view.kind, DESCRIPTIONS[view.direction])
            return translate(template, locale).format(name=name)
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


def amount_from_form(
    request: Request, wallet: Wallet, amount: str, currency: str
) -> tuple[str, int]:
    """The asset and minor units of an amount typed in a form, read in the page's language."""
    asset = wallet.offered(currency)
    return asset.code, parse_typed_amount(amount, asset, page_locale(request))


def with_step_up(
    request: Request,
    database: Database,
    identity: Identity,
    *,
    csrf_token: str,
    password: str,
    second_factor: str,
    action: str,
    fields: dict[str, str],
    nav: str,
    run: Callable[[Principal], T],
    then: Callable[[T], Response],
    again: Callable[[PurseError], Response],
    summary: Callable[[], str] | None = None,
) -> Response:
    """A money form that may need a fresh password confirmation (a large transfer).

    If the use case answers ``step_up_required``, the person is asked for their
    password (and authenticator code) on a page that posts the same form again,
    with the same idempotency key; once it is confirmed the use case runs.
    """
    check_csrf(request, csrf_token)
    current = require_signed_in(request, database)

    def ask(error: PurseError | None = None) -> Response:
        return step_up_page(
            request,
            database,
            identity,
            current,
            error,
            action=action,
            fields=fields,
            nav=nav,
            summary=summary() if summary else None,
        )

    if password:
        refused = confirm_step_up(
            request, database, identity, current, password=password, second_factor=second_factor
        )
        if refused is not None:
            return ask(None if isinstance(refused, SecondFactorRequired) else refused)
        current = require_signed_in(request, database)  # confirmed just now
    principal = Principal.of_session(
        current, address=request.client.host if request.client else None
    )
    return form_action(
        lambda: run(principal),
        then=then,
        again=lambda error: ask() if isinstance(error, StepUpRequired) else again(error),
    )


def money_summary(
    request: Request, wallet: Wallet, template: str, amount: str, currency: str, **values: str
) -> Callable[[], str]:
    """What a money form is about to do, for the page that confirms it ("Send ¥1,200.00 to ...")."""

    def summary() -> str:
        locale = page_locale(request)
        asset = wallet.offered(currency)
        shown = format_amount(parse_typed_amount(amount, asset, locale), asset, locale)
        return translate(template, locale).format(amount=shown, **values)

    return summary


def new_key() -> str:
    """An idempotency key for a form that moves money, made when the form is shown."""
    return str(uuid.uuid4())


def to_receipt(result: OperationResult, flag: str) -> Response:
    return redirect(f"/activity/{result.operation.reference}?{flag}=1")
