"""Tamper-evident hash chains (the ledger's transfers, the audit log).

Each link is SHA-256 over the previous link and the record's fields, so changing
or removing any record breaks every link after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

GENESIS_HASH = "0" * 64


def link_hash(previous_hash: str, fields: Sequence[object]) -> str:
    """SHA-256 over the previous hash and ``fields``.

    Fields are joined with ``|``; a ``|`` or ``\\`` inside a value is escaped, so
    two different field lists never join to the same text. Datetimes are written
    as ISO 8601 with microseconds, so a record hashes the same on every database.
    """
    parts = [previous_hash]
    for value in fields:
        if value is None:
            parts.append("")
        elif isinstance(value, datetime):
            parts.append(value.isoformat(timespec="microseconds"))
        else:
            parts.append(str(value).replace("\\", "\\\\").replace("|", "\\|"))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()
