"""HTML pages of what happened: activity, one operation and its receipt, statements."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from purse.db import Database
from purse.deps import DatabaseDep, IdPath
from purse.errors import PurseError
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.operations import kinds
from purse.operations.queries import OperationView, operation_for
from purse.wallet import queries, statements
from purse.wallet.api.common import WalletDep
from purse.wallet.api.history import statement_download
from purse.wallet.context import Wallet
from purse.wallet.pages.common import wallet_page
from purse.web.forms import form_action
from purse.web.templating import page_locale
from purse.web.views import form_principal, redirect, signed_in_principal

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]
Reference = Annotated[str, Path(max_length=32)]
_STATUSES = ("pending", "completed", "failed")
_JUST = ("sent", "started", "converted")


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/activity", response_class=HTMLResponse)
def activity(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    cursor: Annotated[str, Query(max_length=20)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    currency: Annotated[str, Query(max_length=12)] = "",
    direction: Annotated[str, Query(max_length=12)] = "",
    kind: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=12)] = "",
    date_from: Annotated[str, Query(max_length=10)] = "",
    date_to: Annotated[str, Query(max_length=10)] = "",
    q: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    user_id = signed_in_principal(request, database).wallet_user_id
    known_kinds = {registered.name for registered in kinds.registered()}
    filters = queries.ActivityFilter(
        asset=currency or None,
        direction=direction if direction in queries.DIRECTIONS else None,
        kind=kind if kind in known_kinds else None,
        status=status if status in _STATUSES else None,
        date_from=_date(date_from),
        date_to=_date(date_to),
        search=q or None,
    )
    filter_values = {
        "currency": currency,
        "direction": direction,
        "kind": kind,
        "status": status,
        "date_from": date_from,
        "date_to": date_to,
        "q": q,
    }

    def read() -> tuple[queries.ActivityPage, list[OperationView]]:
        return database.run(
            lambda session: (
                queries.activity(
                    session,
                    wallet=wallet,
                    user_id=user_id,
                    filters=filters,
                    cursor=cursor,
                    limit=limit,
                ),
                queries.pending(session, user_id=user_id) if not cursor else [],
            ),
            write=False,
        )

    def show(found: tuple[queries.ActivityPage, list[OperationView]]) -> Response:
        page_of, pending = found
        next_url = None
        if page_of.next_cursor:
            kept = {k: v for k, v in filter_values.items() if v}
            if limit != 20:
                kept["limit"] = str(limit)
            next_url = "/activity?" + urlencode({**kept, "cursor": page_of.next_cursor})
        template = "_activity_rows.html" if request.headers.get("hx-request") else "activity.html"
        return wallet_page(
            request,
            database,
            wallet,
            template,
            nav="activity",
            items=page_of.items,
            pending=pending,
            next_url=next_url,
            filters=filter_values,
        )

    return form_action(
        read,
        then=show,
        again=lambda error: wallet_page(
            request,
            database,
            wallet,
            "activity.html",
            nav="activity",
            error=error,
            status_code=error.status,
            items=[],
            pending=[],
            next_url=None,
            filters={},
        ),
    )


@router.get("/activity/{reference}", response_class=HTMLResponse)
def operation(
    request: Request, reference: Reference, database: DatabaseDep, wallet: WalletDep
) -> Response:
    principal = signed_in_principal(request, database)
    view = database.run(
        lambda session: operation_for(session, principal=principal, reference=reference),
        write=False,
    )
    template = "_operation.html" if request.headers.get("hx-request") else "operation.html"
    return wallet_page(
        request,
        database,
        wallet,
        template,
        nav="activity",
        op=view,
        just=next((flag for flag in _JUST if request.query_params.get(flag)), None),
    )


@router.get("/activity/{reference}/receipt", response_class=HTMLResponse)
def receipt(
    request: Request, reference: Reference, database: DatabaseDep, wallet: WalletDep
) -> Response:
    principal = signed_in_principal(request, database)
    view, me = database.run(
        lambda session: (
            operation_for(session, principal=principal, reference=reference),
            session.get_one(User, principal.wallet_user_id),
        ),
        write=False,
    )
    return wallet_page(
        request,
        database,
        wallet,
        "receipt.html",
        nav="activity",
        op=view,
        me=me,
        printed_at=utc_now(),
    )


# Statements -------------------------------------------------------------------------------


def _statements_page(
    request: Request,
    database: Database,
    wallet: Wallet,
    principal: Principal,
    *,
    status_code: int = 200,
    error: PurseError | None = None,
) -> HTMLResponse:
    found = database.run(
        lambda session: statements.recent_statements(session, user_id=principal.wallet_user_id),
        write=False,
    )
    local = utc_now().astimezone(ZoneInfo(wallet.settings.timezone))
    months = []
    year, month = local.year, local.month
    for _ in range(12):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return wallet_page(
        request,
        database,
        wallet,
        "statements.html",
        nav="statements",
        status_code=status_code,
        error=error,
        statements=found,
        months=months,
    )


@router.get("/statements", response_class=HTMLResponse)
def statements_page(request: Request, database: DatabaseDep, wallet: WalletDep) -> Response:
    return _statements_page(request, database, wallet, signed_in_principal(request, database))


@router.post("/statements", response_class=HTMLResponse)
def request_statement(
    request: Request,
    database: DatabaseDep,
    wallet: WalletDep,
    csrf_token: Field = "",
    month: Field = "",
    format: Field = "pdf",
) -> Response:
    principal = form_principal(request, database, csrf_token)
    return form_action(
        lambda: database.run(
            lambda session: statements.request_statement(
                session,
                wallet=wallet,
                principal=principal,
                month=month,
                format=format,
                locale=page_locale(request),
            )
        ),
        then=lambda created: redirect(f"/statements/{created.id}"),
        again=lambda error: _statements_page(
            request, database, wallet, principal, status_code=error.status, error=error
        ),
    )


@router.get("/statements/{statement_id}", response_class=HTMLResponse)
def statement_progress(
    request: Request, statement_id: IdPath, database: DatabaseDep, wallet: WalletDep
) -> Response:
    """How far a statement is; the page polls this (htmx) until it can be downloaded."""
    principal = signed_in_principal(request, database)
    found = database.run(
        lambda session: statements.statement_for(
            session, principal=principal, statement_id=statement_id
        ),
        write=False,
    )
    template = "_statement.html" if request.headers.get("hx-request") else "statement.html"
    return wallet_page(request, database, wallet, template, nav="statements", statement=found)


@router.get("/statements/{statement_id}/download")
def download(
    request: Request, statement_id: IdPath, database: DatabaseDep, wallet: WalletDep
) -> Response:
    return statement_download(wallet, signed_in_principal(request, database), statement_id)
