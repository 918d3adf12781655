"""The routes of a merchant's webhook endpoints and their delivery log (its staff's).

Owners and developers register and manage endpoints; everyone on the team reads the log.
The signing secret is in the answer that made it (creation, rotation) and nowhere else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from purse.deps import ActorDep, CurrentDep, DatabaseDep, IdentityDep, IdPath, user_actor
from purse.identity.sessions import Authenticated
from purse.merchants import delivery, webhooks
from purse.merchants import schemas as s
from purse.merchants.api.common import KEYS_STEP_UP, as_member
from purse.merchants.rules import KeyMode
from purse.merchants.webhooks import DeliveryRecord, EndpointRecord
from purse.models import utc_now

router = APIRouter(prefix="/v1/merchants", tags=["merchant webhooks"])


def _endpoint_read(endpoint: EndpointRecord) -> s.WebhookEndpointRead:
    return s.WebhookEndpointRead(
        id=endpoint.id,
        mode=KeyMode(endpoint.mode),
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        status=endpoint.status,
        disabled_reason=endpoint.disabled_reason,
        previous_secret_until=endpoint.previous_secret_until,
        created_at=endpoint.created_at,
    )


def _created(found: tuple[EndpointRecord, str]) -> s.WebhookEndpointCreated:
    endpoint, secret = found
    return s.WebhookEndpointCreated(**_endpoint_read(endpoint).model_dump(), secret=secret)


def _delivery_read(found: DeliveryRecord) -> s.WebhookDeliveryRead:
    return s.WebhookDeliveryRead(
        id=found.id,
        endpoint_id=found.endpoint_id,
        message_id=found.message_id,
        event_type=found.event_type,
        body=found.body,
        status=found.status,
        attempts=found.attempts,
        next_attempt_at=found.next_attempt_at,
        last_status_code=found.last_status_code,
        created_at=found.created_at,
        log=[
            s.WebhookAttemptRead(
                attempted_at=attempt.attempted_at,
                status_code=attempt.status_code,
                response_excerpt=attempt.response_excerpt,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
            for attempt in found.log
        ],
    )


@router.get("/{merchant_id}/webhook-endpoints", response_model=list[s.WebhookEndpointRead])
def list_webhook_endpoints(
    merchant_id: IdPath, database: DatabaseDep, current: CurrentDep
) -> list[s.WebhookEndpointRead]:
    """The merchant's webhook endpoints (never their secrets)."""
    use_case = as_member(
        current,
        merchant_id,
        "merchant:read",
        lambda session: webhooks.endpoints(session, merchant_id=merchant_id),
    )
    return [_endpoint_read(found) for found in database.run(use_case, write=False)]


@router.post(
    "/{merchant_id}/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=s.WebhookEndpointCreated,
)
def create_webhook_endpoint(
    merchant_id: IdPath,
    body: s.WebhookEndpointCreate,
    database: DatabaseDep,
    identity: IdentityDep,
    current: CurrentDep,
    actor: ActorDep,
    _fresh: Annotated[Authenticated, KEYS_STEP_UP],
) -> s.WebhookEndpointCreated:
    """Register an endpoint. Its signing secret is in this answer only: store it now.

    In production a URL that leads to a loopback, private or link-local address is
    refused (``webhook_url_not_allowed``).
    """
    webhooks.check_endpoint_fields(body.url, body.event_types, body.description)
    delivery.check_destination(body.url, settings=database.settings)
    use_case = as_member(
        current,
        merchant_id,
        "webhooks:manage",
        lambda session: webhooks.create_endpoint(
            session,
            cipher=identity.cipher,
            merchant_id=merchant_id,
            mode=body.mode.value,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            actor=user_actor(actor, current),
        ),
    )
    return _created(database.run(use_case))


@router.get("/{merchant_id}/webhook-endpoints/{endpoint_id}", response_model=s.WebhookEndpointRead)
def get_webhook_endpoint(
    merchant_id: IdPath, endpoint_id: IdPath, database: DatabaseDep, current: CurrentDep
) -> s.WebhookEndpointRead:
    """One of the merchant's webhook endpoints (never its secret)."""
    use_case = as_member(
        current,
        merchant_id,
        "merchant:read",
        lambda session: webhooks.endpoint(
            session, merchant_id=merchant_id, endpoint_id=endpoint_id
        ),
    )
    return _endpoint_read(database.run(use_case, write=False))


@router.post(
    "/{merchant_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
    status_code=status.HTTP_201_CREATED,
    response_model=s.WebhookEndpointCreated,
)
def rotate_webhook_secret(
    merchant_id: IdPath,
    endpoint_id: IdPath,
    body: s.WebhookSecretRotate,
    database: DatabaseDep,
    identity: IdentityDep,
    current: CurrentDep,
    actor: ActorDep,
    _fresh: Annotated[Authenticated, KEYS_STEP_UP],
) -> s.WebhookEndpointCreated:
    """A new signing secret (in this answer only); the old one signs beside it for
    ``overlap_seconds``, so the merchant's server can move to the new one."""
    use_case = as_member(
        current,
        merchant_id,
        "webhooks:manage",
        lambda session: webhooks.rotate_secret(
            session,
            cipher=identity.cipher,
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            overlap_seconds=body.overlap_seconds,
            actor=user_actor(actor, current),
        ),
    )
    return _created(database.run(use_case))


def _set_enabled(
    merchant_id: int,
    endpoint_id: int,
    enabled: bool,
    database: DatabaseDep,
    current: Authenticated,
    actor: ActorDep,
) -> s.WebhookEndpointRead:
    use_case = as_member(
        current,
        merchant_id,
        "webhooks:manage",
        lambda session: webhooks.set_enabled(
            session,
            merchant_id=merchant_id,
            endpoint_id=endpoint_id,
            enabled=enabled,
            actor=user_actor(actor, current),
        ),
    )
    return _endpoint_read(database.run(use_case))


@router.post(
    "/{merchant_id}/webhook-endpoints/{endpoint_id}/disable",
    response_model=s.WebhookEndpointRead,
)
def disable_webhook_endpoint(
    merchant_id: IdPath,
    endpoint_id: IdPath,
    database: DatabaseDep,
    current: CurrentDep,
    actor: ActorDep,
) -> s.WebhookEndpointRead:
    """Stop sending to an endpoint (deliveries wait until it is enabled again)."""
    return _set_enabled(merchant_id, endpoint_id, False, database, current, actor)


@router.post(
    "/{merchant_id}/webhook-endpoints/{endpoint_id}/enable",
    response_model=s.WebhookEndpointRead,
)
def enable_webhook_endpoint(
    merchant_id: IdPath,
    endpoint_id: IdPath,
    database: DatabaseDep,
    current: CurrentDep,
    actor: ActorDep,
) -> s.WebhookEndpointRead:
    """Send to an endpoint again (after it was disabled, by hand or for failing)."""
    return _set_enabled(merchant_id, endpoint_id, True, database, current, actor)


@router.get(
    "/{merchant_id}/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=list[s.WebhookDeliveryRead],
)
def list_webhook_deliveries(
    merchant_id: IdPath,
    endpoint_id: IdPath,
    database: DatabaseDep,
    current: CurrentDep,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[s.WebhookDeliveryRead]:
    """The endpoint's delivery log, newest first: each request, its status, each attempt
    and the start of each answer. Pass the last id as ``cursor`` for older ones."""

    def read(session: Session) -> list[DeliveryRecord]:
        webhooks.endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id)
        return webhooks.deliveries(
            session, merchant_id=merchant_id, endpoint_id=endpoint_id, cursor=cursor, limit=limit
        )

    use_case = as_member(current, merchant_id, "merchant:read", read)
    return [_delivery_read(found) for found in database.run(use_case, write=False)]


@router.post(
    "/{merchant_id}/webhook-deliveries/{delivery_id}/resend",
    response_model=s.WebhookDeliveryRead,
)
def resend_webhook(
    merchant_id: IdPath,
    delivery_id: IdPath,
    database: DatabaseDep,
    current: CurrentDep,
    actor: ActorDep,
) -> s.WebhookDeliveryRead:
    """Send a delivery again now, with the same webhook-id (the worker sends it)."""
    use_case = as_member(
        current,
        merchant_id,
        "webhooks:manage",
        lambda session: webhooks.resend(
            session,
            merchant_id=merchant_id,
            delivery_id=delivery_id,
            actor=user_actor(actor, current),
            now=utc_now(),
        ),
    )
    return _delivery_read(database.run(use_case))
