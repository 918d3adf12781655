"""Merchants: businesses that take payments from purse wallets, their staff and their API keys."""
