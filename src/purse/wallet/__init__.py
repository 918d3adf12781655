"""The wallet: what a user does with their money, on top of the ledger."""
