"""The funding providers of this process: the built-in simulator, or real ones plugged in.

Built once by the assembly (:mod:`purse.house`). A provider's callbacks are
applied by whichever domain made the payment; the assembly tells this object
where to hand them (:meth:`Funding.handle_events_with`), so the funding domain
never depends on the domains above it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property

from purse.crypto import derive_key
from purse.db import Database
from purse.funding.errors import ProviderUnavailable
from purse.funding.provider import Event, FundingProvider
from purse.funding.simulator import Simulator

EventHandler = Callable[[str, Event], str]


class Funding:
    def __init__(
        self,
        database: Database,
        *,
        providers: Mapping[str, FundingProvider] | None = None,
    ) -> None:
        self.database = database
        self._providers = dict(providers) if providers else None
        self._handler: EventHandler | None = None

    @cached_property
    def simulator(self) -> Simulator:
        """The built-in bank, made on first use (its callback key derives from the secret)."""
        settings = self.database.settings
        return Simulator(
            self.database,
            secret=derive_key(settings.resolved_secret_key(), "purse funding simulator"),
            settle_seconds=settings.simulator_settle_seconds,
            deliver=lambda event: self.deliver(Simulator.name, event),
        )

    @cached_property
    def providers(self) -> dict[str, FundingProvider]:
        """The providers by name: those given, or the simulator alone."""
        return self._providers if self._providers else {Simulator.name: self.simulator}

    def provider(self, name: str) -> FundingProvider:
        found = self.providers.get(name)
        if found is None:
            raise ProviderUnavailable()
        return found

    @property
    def default_provider(self) -> str:
        return next(iter(self.providers))

    def handle_events_with(self, handler: EventHandler) -> None:
        """Where providers' outcomes go: ``handler(provider_name, event)`` returns what it did."""
        self._handler = handler

    def deliver(self, provider_name: str, event: Event) -> str:
        """Apply a provider's callback (in a transaction of the handler's own)."""
        assert self._handler is not None, "the assembly sets the event handler"
        return self._handler(provider_name, event)
