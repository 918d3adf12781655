"""Assets: every ISO 4217 currency (from Babel's CLDR data) plus custom assets.

The scale of a currency is the number of minor-unit digits CLDR gives it (CNY 2,
JPY 0, KWD 3). Custom assets such as tokens or points are declared in settings
with their own scale. The set of CLDR currencies includes withdrawn ones, so an
account's asset never disappears from the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

from purse.money.errors import AssetUnknown


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    scale: int
    is_currency: bool

    @property
    def minor_per_major(self) -> int:
        return int(10**self.scale)


@cache
def _iso_currencies() -> dict[str, Asset]:
    return {
        code: Asset(code=code, scale=int(get_currency_precision(code)), is_currency=True)
        for code in list_currencies()
    }


class AssetRegistry:
    """The assets a purse installation knows: ISO currencies and the custom ones."""

    def __init__(self, custom: Mapping[str, int] | None = None) -> None:
        self._assets = dict(_iso_currencies())
        for code, scale in (custom or {}).items():
            if code in self._assets:
                raise ValueError(f"custom asset {code} clashes with an ISO 4217 currency")
            self._assets[code] = Asset(code=code, scale=scale, is_currency=False)

    def get(self, code: str) -> Asset:
        asset = self._assets.get(code.upper()) if isinstance(code, str) else None
        if asset is None:
            raise AssetUnknown(asset=code)
        return asset

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.upper() in self._assets

    def __len__(self) -> int:
        return len(self._assets)

    def codes(self) -> list[str]:
        return sorted(self._assets)
