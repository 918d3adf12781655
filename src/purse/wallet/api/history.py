"""JSON routes for what happened: balances, activity, one operation, spending, statements."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from purse.deps import IdPath
from purse.errors import placeholders
from purse.i18n import translate
from purse.identity.principal import Principal
from purse.models import utc_now
from purse.operations.kinds import Direction
from purse.operations.queries import operation_for
from purse.operations.schemas import Money, OperationRead, OperationStatus, PartyRead
from purse.problems import request_locale
from purse.wallet import queries, statements
from purse.wallet import schemas as s
from purse.wallet.api.common import PREFIX, PrincipalDep, WalletDep
from purse.wallet.context import Wallet
from purse.wallet.errors import CATALOGUE
from purse.wallet.models import Statement

router = APIRouter(prefix=PREFIX, tags=["wallet"])


@router.get("/balances", response_model=list[s.BalanceRead])
def list_balances(wallet: WalletDep, principal: PrincipalDep) -> list[s.BalanceRead]:
    """One balance per currency the user holds."""
    found = wallet.database.run(
        lambda session: queries.balances(session, wallet=wallet, user_id=principal.wallet_user_id),
        write=False,
    )
    return [
        s.BalanceRead(
            currency=view.asset.code,
            balance=Money.of(view.balance_minor, view.asset.code, wallet.assets),
            available=Money.of(view.available_minor, view.asset.code, wallet.assets),
            held=Money.of(view.held_minor, view.asset.code, wallet.assets),
            incoming=Money.of(view.incoming_minor, view.asset.code, wallet.assets),
        )
        for view in found
    ]


@router.get("/activity", response_model=s.ActivityRead)
def list_activity(
    request: Request,
    wallet: WalletDep,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    currency: Annotated[str | None, Query(max_length=12)] = None,
    direction: Direction | None = None,
    kind: Annotated[
        str | None,
        Query(max_length=16, description="An operation kind, as an operation's `kind` says"),
    ] = None,
    status: OperationStatus | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    counterparty: Annotated[str | None, Query(max_length=64, description="A handle")] = None,
    q: Annotated[str | None, Query(max_length=64, description="Search notes and names")] = None,
) -> s.ActivityRead:
    """The user's operations, newest first; `next_cursor` fetches the next page."""
    filters = queries.ActivityFilter(
        asset=currency,
        direction=direction,
        kind=kind,
        status=status,
        date_from=date_from,
        date_to=date_to,
        counterparty=counterparty,
        search=q,
    )
    page = wallet.database.run(
        lambda session: queries.activity(
            session,
            wallet=wallet,
            user_id=principal.wallet_user_id,
            filters=filters,
            cursor=cursor,
            limit=limit,
        ),
        write=False,
    )
    locale = request_locale(request)
    return s.ActivityRead(
        items=[OperationRead.of(item, wallet.assets, locale) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/operations/{reference}", response_model=OperationRead)
def get_operation(
    request: Request,
    reference: Annotated[str, Path(max_length=32)],
    wallet: WalletDep,
    principal: PrincipalDep,
) -> OperationRead:
    """One operation with its status timeline; the reference is on the receipt."""
    view = wallet.database.run(
        lambda session: operation_for(session, principal=principal, reference=reference),
        write=False,
    )
    return OperationRead.of(view, wallet.assets, request_locale(request))


@router.get("/spending", response_model=s.SpendingRead)
def get_spending(
    wallet: WalletDep,
    principal: PrincipalDep,
    currency: Annotated[str, Query(min_length=2, max_length=12)] = "CNY",
) -> s.SpendingRead:
    """Money sent and withdrawn per month (six months), and to whom this month."""
    asset = wallet.offered(currency)
    found = wallet.database.run(
        lambda session: queries.spending(
            session,
            wallet=wallet,
            user_id=principal.wallet_user_id,
            asset=asset.code,
            now=utc_now(),
        ),
        write=False,
    )
    return s.SpendingRead(
        currency=asset.code,
        months=[
            s.SpendingMonthRead(month=month, spent=Money.of(amount, asset.code, wallet.assets))
            for month, amount in found.months
        ],
        counterparties=[
            s.SpendingPartyRead(
                counterparty=PartyRead(handle=party.handle, masked_name=party.masked_name),
                spent=Money.of(amount, asset.code, wallet.assets),
            )
            for party, amount in found.counterparties
        ],
    )


def _statement_read(statement: Statement) -> s.StatementRead:
    return s.StatementRead(
        id=statement.id,
        month=statement.month,
        format=statement.format,
        locale=statement.locale,
        status=statement.status,
        lines_done=statement.lines_done,
        lines_total=statement.lines_total,
        created_at=statement.created_at,
        finished_at=statement.finished_at,
        file=f"{PREFIX}/statements/{statement.id}/file" if statement.status == "ready" else None,
    )


@router.post("/statements", status_code=status.HTTP_202_ACCEPTED, response_model=s.StatementRead)
def request_statement(
    request: Request,
    response: Response,
    body: s.StatementCreate,
    wallet: WalletDep,
    principal: PrincipalDep,
) -> s.StatementRead:
    """Ask for a month's statement; a worker prepares it, poll `Location` for its progress."""
    created = wallet.database.run(
        lambda session: statements.request_statement(
            session,
            wallet=wallet,
            principal=principal,
            month=body.month,
            format=body.format,
            locale=request_locale(request),
        )
    )
    response.headers["Location"] = f"{PREFIX}/statements/{created.id}"
    return _statement_read(created)


@router.get("/statements", response_model=list[s.StatementRead])
def list_statements(wallet: WalletDep, principal: PrincipalDep) -> list[s.StatementRead]:
    """The user's latest statements, newest first."""
    found = wallet.database.run(
        lambda session: statements.recent_statements(session, user_id=principal.wallet_user_id),
        write=False,
    )
    return [_statement_read(item) for item in found]


@router.get("/statements/{statement_id}", response_model=s.StatementRead)
def get_statement(
    statement_id: IdPath, wallet: WalletDep, principal: PrincipalDep
) -> s.StatementRead:
    """A statement's status and progress."""
    found = wallet.database.run(
        lambda session: statements.statement_for(
            session, principal=principal, statement_id=statement_id
        ),
        write=False,
    )
    return _statement_read(found)


@router.get("/statements/{statement_id}/file", response_class=Response)
def get_statement_file(
    statement_id: IdPath, wallet: WalletDep, principal: PrincipalDep
) -> Response:
    """The statement as CSV or PDF (409 `statement_not_ready` while it is being prepared)."""
    return statement_download(wallet, principal, statement_id)


def statement_download(wallet: Wallet, principal: Principal, statement_id: int) -> Response:
    """A statement file as an attachment, never shown inline, never cached."""

    def read(session: Session) -> tuple[Statement, bytes]:
        content = statements.statement_file(session, principal=principal, statement_id=statement_id)
        found = statements.statement_for(session, principal=principal, statement_id=statement_id)
        return found, content

    found, content = wallet.database.run(read, write=False)
    return Response(
        content,
        media_type=statements.MEDIA_TYPES[found.format],
        headers={
            "Content-Disposition": f'attachment; filename="{statements.download_name(found)}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/failure-reasons", response_model=list[s.FailureReasonRead])
def list_failure_reasons(request: Request) -> list[s.FailureReasonRead]:
    """Every reason a wallet operation can fail: its title, its message and next step with
    the data fields named where the answer fills them in, and whether retrying can help."""
    locale = request_locale(request)
    reasons = []
    for cls in CATALOGUE:
        message, next_step = cls.described(locale)
        reasons.append(
            s.FailureReasonRead(
                code=cls.code,
                status=cls.status,
                title=translate(cls.title, locale),
                message=message,
                next_step=next_step or None,
                retryable=cls.retryable,
                fields=sorted(placeholders(cls.detail) | placeholders(cls.next_step)),
            )
        )
    return reasons
