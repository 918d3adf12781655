"""What every wallet use case needs: settings, assets, funding providers; and who is calling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from purse.crypto import derive_key
from purse.db import Database
from purse.funding.errors import ProviderUnavailable
from purse.funding.provider import Event, FundingProvider
from purse.funding.simulator import Simulator
from purse.identity.context import Identity
from purse.ledger.rules import Initiator
from purse.money.assets import Asset, AssetRegistry
from purse.wallet.errors import AssetNotOffered


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in user a wallet use case acts for, and through which session."""

    user_id: int
    session_id: int | None
    via: str  # "web" (session cookie), "api" (access token), "operator" (CLI, demo)

    def initiator(self) -> Initiator:
        authenticated_by = {"web": "web_session", "api": "access_token"}.get(self.via, self.via)
        return Initiator(
            kind="user_session", id=f"session:{self.session_id}", authenticated_by=authenticated_by
        )


class Wallet:
    """The wallet's collaborators, built once per process."""

    def __init__(
        self,
        database: Database,
        identity: Identity,
        *,
        providers: Mapping[str, FundingProvider] | None = None,
    ) -> None:
        self.database = database
        self.settings = database.settings
        self.identity = identity
        self.assets = AssetRegistry(self.settings.custom_assets)
        self.simulator = Simulator(
            database,
            secret=derive_key(self.settings.resolved_secret_key(), "purse funding simulator"),
            settle_seconds=self.settings.simulator_settle_seconds,
            deliver=lambda event: self.deliver(Simulator.name, event),
        )
        self.providers: dict[str, FundingProvider] = (
            dict(providers) if providers else {Simulator.name: self.simulator}
        )

    def provider(self, name: str) -> FundingProvider:
        found = self.providers.get(name)
        if found is None:
            raise ProviderUnavailable()
        return found

    @property
    def default_provider(self) -> str:
        return next(iter(self.providers))

    def offered(self, code: str) -> Asset:
        """An asset users may hold here (``asset_unknown`` or ``asset_not_offered`` if not)."""
        asset = self.assets.get(code)
        if asset.code not in self.settings.wallet_assets:
            raise AssetNotOffered(asset=asset.code)
        return asset

    def deliver(self, provider_name: str, event: Event) -> str:
        """Apply a provider's callback in a transaction of its own; returns what it did."""
        from purse.wallet import bank

        return self.database.run(
            lambda session: bank.handle_provider_event(
                session, wallet=self, provider_name=provider_name, event=event
            )
        )
