"""Assets and amounts: integer minor units, never floats."""

from purse.money.amounts import Money, format_amount, parse_amount, to_decimal
from purse.money.assets import Asset, AssetRegistry

__all__ = ["Asset", "Money", "AssetRegistry", "format_amount", "parse_amount", "to_decimal"]
