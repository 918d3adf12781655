"""What every wallet use case needs: money operations, funding providers; built once per process."""

from __future__ import annotations

from purse.funding.context import Funding
from purse.funding.provider import FundingProvider
from purse.funding.simulator import Simulator
from purse.money.assets import Asset
from purse.operations.context import Operations


class Wallet:
    """The wallet's collaborators (see :mod:`purse.assembly`, which builds them)."""

    def __init__(self, operations: Operations, funding: Funding) -> None:
        self.operations = operations
        self.funding = funding
        self.database = operations.database
        self.settings = operations.settings
        self.identity = operations.identity
        self.assets = operations.assets

    @property
    def simulator(self) -> Simulator:
        return self.funding.simulator

    def provider(self, name: str) -> FundingProvider:
        return self.funding.provider(name)

    def offered(self, code: str) -> Asset:
        """An asset users may hold here (``asset_unknown`` or ``asset_not_offered`` if not)."""
        return self.operations.offered(code)
