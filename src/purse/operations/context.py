"""What every money use case needs, whichever domain it belongs to, built once per process."""

from __future__ import annotations

from purse.db import Database
from purse.identity.context import Identity
from purse.ledger.rules import LedgerLimits
from purse.money.assets import Asset, AssetRegistry
from purse.operations.errors import AssetNotOffered


class Operations:
    """The collaborators of money operations: the database, settings, assets, identity."""

    def __init__(self, database: Database, identity: Identity) -> None:
        self.database = database
        self.settings = database.settings
        self.identity = identity
        self.assets = AssetRegistry(self.settings.custom_assets)
        self.ledger_limits = LedgerLimits.from_settings(self.settings)

    def offered(self, code: str) -> Asset:
        """An asset users may hold here (``asset_unknown`` or ``asset_not_offered`` if not)."""
        asset = self.assets.get(code)
        if asset.code not in self.settings.wallet_assets:
            raise AssetNotOffered(asset=asset.code)
        return asset
