"""The one place that assembles purse: its collaborators, each domain's jobs and routes.

The HTTP app (:func:`purse.app.create_app`), the worker and the CLI
(:mod:`purse.cli`), the demo and the tests all build purse here, so a funding
provider, a notification channel or a domain is plugged in once and every entry
point gets it. Nothing is built at import time.

Domains depend downwards only (see docs/architecture.md); the wiring that must
point upwards, such as where a funding provider's callbacks go, is done here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from purse.db import Database
from purse.funding import jobs as funding_jobs
from purse.funding.context import Funding
from purse.funding.provider import FundingProvider
from purse.identity.context import Identity
from purse.jobs import Job
from purse.ledger import jobs as ledger_jobs
from purse.ledger.verify import VerifyReport, verify_ledger
from purse.merchants import jobs as merchant_jobs
from purse.merchants import kinds as merchant_kinds  # noqa: F401 - registers its kinds
from purse.notify import jobs as notify_jobs
from purse.notify import relay
from purse.operations.context import Operations
from purse.operations.verify import check_operations
from purse.settings import Settings
from purse.wallet import banking
from purse.wallet import jobs as wallet_jobs
from purse.wallet.context import Wallet

if TYPE_CHECKING:
    from fastapi import APIRouter


class Purse:
    """purse, assembled for one process from its settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        providers: Mapping[str, FundingProvider] | None = None,
        channels: Mapping[str, relay.Channel] | None = None,
    ) -> None:
        self.settings = settings
        self.owns_database = database is None
        self.database = database if database is not None else Database(settings)
        self.identity = Identity(settings)
        self.funding = Funding(self.database, providers=providers)
        self.operations = Operations(self.database, self.identity)
        self.wallet = Wallet(self.operations, self.funding)
        # Providers report outcomes of top-ups and withdrawals; the wallet applies them.
        self.funding.handle_events_with(partial(banking.deliver, self.wallet))
        self.channels = dict(channels) if channels is not None else relay.channels_from(settings)

    def jobs(self) -> list[Job]:
        """Every domain's background jobs, each in its lane."""
        return [
            *ledger_jobs.jobs(self.settings),
            *notify_jobs.jobs(cipher=self.identity.cipher, channels=self.channels),
            *funding_jobs.jobs(self.funding),
            *wallet_jobs.jobs(self.wallet),
            *merchant_jobs.jobs(self.operations),
        ]

    def routers(self) -> list[APIRouter]:
        """Every domain's JSON and HTML routes.

        Imported here, not at the top: a worker process assembles purse too, and
        has no use for FastAPI (its import is most of a worker's start-up time).
        """
        from purse.funding import api as funding_api
        from purse.funding import pages as funding_pages
        from purse.identity import api as identity_api
        from purse.identity import pages as identity_pages
        from purse.merchants import api as merchants_api
        from purse.merchants import pages as merchants_pages
        from purse.wallet import api as wallet_api
        from purse.wallet import pages as wallet_pages

        return [
            identity_api.router,
            *identity_pages.routers,
            *wallet_api.routers,
            funding_api.router,
            funding_api.callbacks,
            funding_pages.router,
            *wallet_pages.routers,
            *merchants_api.routers,
            *merchants_pages.routers,
        ]

    def body_caps(self) -> dict[str, int]:
        """Paths, by prefix, whose routes take smaller bodies than PURSE_HTTP_BODY_BYTES_MAX."""
        from purse.funding import api as funding_api

        return {funding_api.CALLBACK_PATH_PREFIX: funding_api.CALLBACK_BODY_BYTES_MAX}

    def verify(self, session: Session) -> VerifyReport:
        """What ``purse ledger verify`` checks: the ledger, and every domain's part of it.

        Every domain's operation kinds are registered by now: this module imports the
        merchants' kinds by name, as a process that only verifies imports none of the code
        that makes them.
        """
        report = verify_ledger(
            session, hold_expiry_grace_seconds=self.settings.hold_expiry_grace_seconds
        )
        check_operations(session, report)
        return report

    def dispose(self) -> None:
        if self.owns_database:
            self.database.dispose()


def assemble(
    settings: Settings,
    *,
    database: Database | None = None,
    providers: Mapping[str, FundingProvider] | None = None,
    channels: Mapping[str, relay.Channel] | None = None,
) -> Purse:
    return Purse(settings, database=database, providers=providers, channels=channels)
