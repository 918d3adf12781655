"""Sealing transfers into the ledger's hash chain.

Every transfer is a link in one SHA-256 chain (:mod:`purse.hashchain`): its
``hash`` covers the link before it and the transfer's fields, and ``chain_seq``
is its place. Changing, removing or reordering a sealed transfer breaks every
link after it, and ``purse ledger verify`` walks the chain to prove none was.

Who seals, and when:

* **SQLite:** the batch that writes the transfers seals them, in the same
  transaction. It holds the database's only write lock already, so the chain
  head costs it no wait; a transfer's id is its place in the chain.
* **PostgreSQL:** transfers are written unsealed (``hash`` and ``chain_seq``
  NULL), with ids from a sequence, and the ledger's ``seal_chain`` job chains
  those committed since its last run, in id order, a moment later. Transfers
  used to take the chain head's row lock from their write to their commit, so
  every payment in every process waited for the one before it; now nothing on
  the payment's path locks a row another payment needs, save the accounts it
  moves.

:func:`take_places` is what a batch asks the chain head for: its transfers' ids, the
closed-month guard, and on SQLite where their links start.

What the sealer sees is what has committed, so a transfer whose transaction was
still open is chained in a later run: the chain's order is the order of sealing,
which is why a place is kept apart from the id. Two sealers take turns on the
chain head's row (``FOR NO KEY UPDATE``, which the payments' key-share lock on the
same row never waits for).

Until it is sealed, a transfer is not yet covered by the chain, but it is by the
balances: they are written in the transaction that writes it, and verify replays
every transfer, sealed or not, against them. Verify counts the transfers waiting
to be sealed; a count that keeps growing means the ledger's jobs are not running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Integer, Table, bindparam, func, select, true, update
from sqlalchemy.orm import Session

from purse.db import Database
from purse.ledger.models import ChainHead, Transfer
from purse.ledger.rules import Initiator, PlannedTransfer, TransferKind, hash_fields, transfer_hash
from purse.prepared import Prepared

# Transfers chained in one run (one transaction): a few hundred milliseconds of work.
SEAL_BATCH_MAX = 5000

_transfers = cast(Table, Transfer.__table__)
_chain = cast(Table, ChainHead.__table__)

_SELECT_HEAD = select(_chain.c.last_chain_seq, _chain.c.head_hash).where(_chain.c.id == 1)
_SELECT_HEAD_FOR = {
    "sqlite": Prepared(_SELECT_HEAD),  # the writer holds SQLite's write lock already
    "postgresql": Prepared(_SELECT_HEAD.with_for_update(key_share=True)),
}
_SELECT_UNSEALED = Prepared(
    select(_transfers)
    .where(_transfers.c.chain_seq.is_(None))
    .order_by(_transfers.c.id)
    .limit(bindparam("limit"))
)
_SEAL = Prepared(
    update(_transfers)
    .where(_transfers.c.id == bindparam("b_id"))
    .values(chain_seq=bindparam("b_seq"), hash=bindparam("b_hash"))
)
UPDATE_HEAD = Prepared(
    update(_chain)
    .where(_chain.c.id == 1)
    .values(last_chain_seq=bindparam("b_seq"), head_hash=bindparam("b_hash"))
)


# The chain head, read last by every batch: on SQLite to seal the batch's transfers as
# it writes them (the write lock is the batch's already); on PostgreSQL only for the
# closed-month guard, under a key-share lock, with the batch's ids drawn alongside.
_SELECT_HEAD_SQLITE = Prepared(
    select(_chain.c.last_chain_seq, _chain.c.head_hash, _chain.c.checkpoint_at).where(
        _chain.c.id == 1
    )
)
_new_ids = func.generate_series(1, bindparam("n", type_=Integer)).table_valued("n")
_SELECT_IDS_POSTGRESQL = Prepared(
    select(_chain.c.checkpoint_at, func.nextval("ledger_transfer_ids").label("id"))
    .select_from(_chain.join(_new_ids, true()))
    .where(_chain.c.id == 1)
    .with_for_update(read=True, key_share=True, of=_chain)
)


@dataclass(frozen=True, slots=True)
class Places:
    """What a batch about to write ``len(ids)`` transfers learns from the chain head."""

    ids: Sequence[int]  # its transfers' ids, in order
    closed_at: datetime | None  # the newest closed month start
    head_hash: str | None  # where its transfers' links start; None: the sealer links them


def take_places(connection: Connection, count: int) -> Places:
    """Ids for a batch's ``count`` transfers and the chain head's state (see the module)."""
    if connection.dialect.name == "sqlite":
        head = _SELECT_HEAD_SQLITE.first(connection, {})
        first = head.last_chain_seq + 1
        return Places(range(first, first + count), head.checkpoint_at, head.head_hash)
    drawn = _SELECT_IDS_POSTGRESQL.all(connection, {"n": count})
    return Places(sorted(row.id for row in drawn), drawn[0].checkpoint_at, None)


def link(previous_hash: str, row: Any) -> str:
    """The hash of a transfer as stored (a row or a record) after ``previous_hash``."""
    planned = PlannedTransfer(
        kind=TransferKind(row.kind),
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        asset=row.asset,
        amount_minor=row.amount_minor,
        reason_code=row.reason_code,
        reference=row.reference,
        pending_id=row.pending_id,
        expires_at=row.expires_at,
        reversal_of=row.reversal_of,
    )
    initiator = Initiator(
        kind=row.initiator_kind, id=row.initiator_id, authenticated_by=row.authenticated_by
    )
    return transfer_hash(
        previous_hash,
        hash_fields(
            transfer_id=row.id,
            group_id=row.group_id,
            planned=planned,
            initiator=initiator,
            created_at=row.created_at,
        ),
    )


def seal_transfers(session: Session, *, limit: int = SEAL_BATCH_MAX) -> int:
    """Chain up to ``limit`` committed, unsealed transfers, oldest id first; how many."""
    assert session.in_transaction(), "ledger writers run inside the caller's DB transaction"
    connection = session.connection()
    head = _SELECT_HEAD_FOR[connection.dialect.name].first(connection, {})
    rows = _SELECT_UNSEALED.all(connection, {"limit": limit})
    if not rows:
        return 0
    seq, previous_hash = head.last_chain_seq, head.head_hash
    seals = []
    for row in rows:
        seq += 1
        previous_hash = link(previous_hash, row)
        seals.append({"b_id": row.id, "b_seq": seq, "b_hash": previous_hash})
    _SEAL.many(connection, seals)
    UPDATE_HEAD.execute(connection, {"b_seq": seq, "b_hash": previous_hash})
    return len(rows)


def seal_everything(database: Database) -> int:
    """Seal until nothing is waiting, as the job would over its next runs; how many."""
    total = 0
    while sealed := database.run(seal_transfers):
        total += sealed
    return total
