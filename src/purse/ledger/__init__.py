"""The double-entry ledger: accounts, transfers, holds, and the hash chain."""
