"""The merchants' background jobs: payments nobody approved in time, holds that ran out
uncaptured, and webhooks to deliver."""

from __future__ import annotations

from purse.jobs import Job, Lane, in_transaction
from purse.merchants import capture, delivery, payments
from purse.operations.context import Operations


def jobs(operations: Operations) -> list[Job]:
    batch = operations.settings.worker_batch_size_max
    return [
        Job(
            "expire_unapproved_payments",
            in_transaction(lambda session: payments.expire_unapproved(session, limit=batch)),
            Lane.wallet,
        ),
        Job(
            "expire_payment_authorizations",
            in_transaction(
                lambda session: capture.expire_authorizations(
                    session, operations=operations, limit=batch
                )
            ),
            Lane.wallet,
        ),
        Job(
            "deliver_webhooks",
            lambda database: delivery.deliver_due(
                database, identity=operations.identity, limit=batch
            ),
            Lane.webhooks,
        ),
    ]
