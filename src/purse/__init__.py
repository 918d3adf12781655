"""purse: a self-hostable digital wallet service."""

__version__ = "0.1.0"
