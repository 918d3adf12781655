"""HTML pages of funding: the user's linked cards and bank accounts.

Linking one needs a recent sign-in, like changing a password; the number typed
is handed to the provider and never shown again, even to its owner.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.deps import DatabaseDep, IdentityDep, IdPath
from purse.errors import PurseError
from purse.funding import queries, service
from purse.funding.api import FundingDep
from purse.funding.context import Funding
from purse.funding.models import FundingSource
from purse.funding.provider import BankAccountDetails, CardDetails
from purse.funding.simulator import TEST_CARDS, Simulator
from purse.i18n import N_, translate
from purse.identity.pages.stepup import step_up_page
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.web.forms import form_action
from purse.web.security import check_csrf
from purse.web.templating import page_locale
from purse.web.views import form_principal, page, redirect, require_signed_in, signed_in_principal

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]
ADDED = N_("Linked. You can use it to top up and withdraw.")


def _sources_page(
    request: Request,
    database: Database,
    funding: Funding,
    principal: Principal,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    sources = database.run(
        lambda session: queries.funding_sources(session, user_id=principal.wallet_user_id),
        write=False,
    )
    simulated = funding.default_provider == Simulator.name
    return page(
        request,
        database,
        "funding_sources.html",
        status_code=status_code,
        nav="home",
        error=error,
        notice=notice,
        sources=sources,
        test_cards=TEST_CARDS if simulated else {},
        this_year=date.today().year,  # noqa: DTZ011 - a form default, not a record
    )


@router.get("/funding-sources", response_class=HTMLResponse)
def funding_sources(request: Request, database: DatabaseDep, funding: FundingDep) -> Response:
    principal = signed_in_principal(request, database)
    notice = translate(ADDED, page_locale(request)) if request.query_params.get("added") else None
    return _sources_page(request, database, funding, principal, notice=notice)


def _details(
    kind: str, number: str, expiry_month: str, expiry_year: str, holder_name: str, bank_name: str
) -> tuple[CardDetails | None, BankAccountDetails | None]:
    if kind == "bank_account":
        return None, BankAccountDetails(
            bank_name=bank_name[:100], account_number=number[:48], holder_name=holder_name
        )
    return (
        CardDetails(
            number=number[:32],
            expiry_month=int(expiry_month) if expiry_month.isdigit() else 0,
            expiry_year=int(expiry_year) if expiry_year.isdigit() else 0,
            holder_name=holder_name,
        ),
        None,
    )


@router.post("/funding-sources", response_class=HTMLResponse)
def add_funding_source(
    request: Request,
    database: DatabaseDep,
    identity: IdentityDep,
    funding: FundingDep,
    csrf_token: Field = "",
    kind: Field = "card",
    number: Field = "",
    expiry_month: Field = "",
    expiry_year: Field = "",
    holder_name: Field = "",
    bank_name: Field = "",
) -> Response:
    """Link a card or account; like changing a password, it needs a recent sign-in."""
    check_csrf(request, csrf_token)
    current = require_signed_in(request, database)
    principal = Principal.of_session(current)
    if principal.needs_step_up("add_funding_source", settings=database.settings, now=utc_now()):
        return step_up_page(request, database, identity, current, next="/funding-sources")
    card, account = _details(kind, number, expiry_month, expiry_year, holder_name, bank_name)

    def link() -> FundingSource:
        return database.run(
            lambda session: service.add_funding_source(
                session,
                funding=funding,
                cipher=identity.cipher,
                principal=principal,
                card=card,
                bank_account=account,
            )
        )

    return form_action(
        link,
        then=lambda _source: redirect("/funding-sources?added=1"),
        again=lambda error: _sources_page(
            request, database, funding, principal, status_code=error.status, error=error
        ),
    )


@router.post("/funding-sources/{funding_source_id}/remove")
def remove_funding_source(
    request: Request,
    funding_source_id: IdPath,
    database: DatabaseDep,
    funding: FundingDep,
    csrf_token: Field = "",
) -> Response:
    principal = form_principal(request, database, csrf_token)
    return form_action(
        lambda: database.run(
            lambda session: service.remove_funding_source(
                session, principal=principal, funding_source_id=funding_source_id
            )
        ),
        then=lambda _source: redirect("/funding-sources"),
        again=lambda error: _sources_page(
            request, database, funding, principal, status_code=error.status, error=error
        ),
    )
