"""JSON routes of funding: the user's linked cards and accounts, and providers' callbacks.

The cards and accounts keep their place under ``/v1/wallet`` (they are the
wallet's sources of money), though the funding domain owns them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from starlette.concurrency import run_in_threadpool

from purse.deps import IdentityDep, IdPath, WalletPrincipalDep, step_up_for
from purse.errors import NotFound
from purse.funding import queries, service
from purse.funding import schemas as s
from purse.funding.context import Funding
from purse.funding.provider import BankAccountDetails, CardDetails
from purse.identity.sessions import Authenticated

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])
callbacks = APIRouter(prefix="/v1/funding", tags=["funding providers"])

# A provider's event names one payment and its outcome: a few hundred bytes for the
# simulator, a few KiB for a verbose provider's envelope. Anyone can post here before the
# signature is checked, so larger bodies are refused unread (413 body_too_large; the
# assembly hands this cap to purse.web.limits for every path under CALLBACK_PATH_PREFIX).
CALLBACK_BODY_BYTES_MAX = 16 * 1024
CALLBACK_PATH_PREFIX = "/v1/funding/providers/"


async def get_funding(request: Request) -> Funding:
    funding: Funding = request.app.state.funding
    return funding


FundingDep = Annotated[Funding, Depends(get_funding)]
PrincipalDep = WalletPrincipalDep


@router.get("/funding-sources", response_model=list[s.FundingSourceRead])
def list_funding_sources(funding: FundingDep, principal: PrincipalDep) -> list[s.FundingSourceRead]:
    """The user's linked cards and bank accounts (brand and last 4 digits only)."""
    found = funding.database.run(
        lambda session: queries.funding_sources(session, user_id=principal.wallet_user_id),
        write=False,
    )
    return [s.FundingSourceRead.model_validate(item, from_attributes=True) for item in found]


@router.post(
    "/funding-sources", status_code=status.HTTP_201_CREATED, response_model=s.FundingSourceRead
)
def add_funding_source(
    body: s.FundingSourceCreate,
    funding: FundingDep,
    identity: IdentityDep,
    principal: PrincipalDep,
    _fresh: Annotated[Authenticated, Depends(step_up_for("add_funding_source"))],
) -> s.FundingSourceRead:
    """Link a card or bank account (needs a recent password confirmation: step-up)."""
    card = bank_account = None
    if isinstance(body, s.CardCreate):
        card = CardDetails(
            number=body.number,
            expiry_month=body.expiry_month,
            expiry_year=body.expiry_year,
            holder_name=body.holder_name,
        )
    else:
        bank_account = BankAccountDetails(
            bank_name=body.bank_name,
            account_number=body.account_number,
            holder_name=body.holder_name,
        )
    source = funding.database.run(
        lambda session: service.add_funding_source(
            session,
            funding=funding,
            cipher=identity.cipher,
            principal=principal,
            card=card,
            bank_account=bank_account,
        )
    )
    return s.FundingSourceRead.model_validate(source, from_attributes=True)


@router.delete("/funding-sources/{funding_source_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_funding_source(
    funding_source_id: IdPath,
    funding: FundingDep,
    principal: PrincipalDep,
) -> Response:
    """Unlink a card or bank account; past operations still name it."""
    funding.database.run(
        lambda session: service.remove_funding_source(
            session, principal=principal, funding_source_id=funding_source_id
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@callbacks.post("/providers/{provider_name}/events", response_model=s.ProviderEventRead)
async def receive_provider_event(
    provider_name: Annotated[str, Path(max_length=32)],
    request: Request,
    funding: FundingDep,
) -> s.ProviderEventRead:
    """Where a funding provider reports outcomes; each event is applied once.

    Called by a provider, not by a wallet user, so no bearer token: every provider
    signs its events its own way and its adapter checks the signature before the
    event is read. The simulator's is the header `simulator-signature:
    t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." followed by the body>`, made with
    its secret and at most five minutes old. An event that fails the check gets 400
    `provider_event_invalid`; a provider that is not configured, 404.
    """
    if provider_name not in funding.providers:
        raise NotFound()
    provider = funding.provider(provider_name)
    body = await request.body()  # whole, and within CALLBACK_BODY_BYTES_MAX (purse.web.limits)
    event = provider.parse_event(headers=request.headers, body=body)
    outcome = await run_in_threadpool(funding.deliver, provider_name, event)
    return s.ProviderEventRead(status=outcome)
