"""What the translation and error tests share: every module of purse imported."""

from __future__ import annotations

import importlib
import pkgutil

import purse


def import_every_module() -> None:
    """Every module of purse, so every error class is registered (migrations run on import)."""
    for module in pkgutil.walk_packages(purse.__path__, "purse."):
        if not module.name.startswith("purse.migrations"):
            importlib.import_module(module.name)
