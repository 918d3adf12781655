"""The append-only, hash-chained log of security and agent actions."""
