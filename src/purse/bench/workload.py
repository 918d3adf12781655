"""The benchmark's workload: a fixed-seed list of transfers, and what each worker returns."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from purse.ledger.rules import (
    Initiator,
)

SEED: Final = 20_250_101


ASSET: Final = "CNY"


AMOUNT_MAX_MINOR: Final = 10_000  # transfers of 0.01 to 100.00 CNY


FUNDING_MINOR: Final = 10**11  # each wallet starts with 1 billion CNY: never runs dry


HOT: Final = -1  # the credit index that names the hot (merchant) account


REASON_CODE: Final = "bench"


IDEMPOTENCY_SCOPE: Final = "bench"


INITIATOR: Final = Initiator(kind="system", id="bench", authenticated_by="system")


@dataclass(frozen=True, slots=True)
class Move:
    """One transfer of the workload, naming wallets by index (``HOT`` for the merchant)."""

    index: int
    debit: int
    credit: int
    amount_minor: int
    key: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """A move resolved against the accounts of one database."""

    index: int
    debit_id: int
    credit_id: int
    amount_minor: int
    key: str


@dataclass(frozen=True, slots=True)
class Accounts:
    system_id: int
    wallet_ids: tuple[int, ...]
    hot_id: int

    def resolve(self, move: Move) -> Transfer:
        credit_id = self.hot_id if move.credit == HOT else self.wallet_ids[move.credit]
        return Transfer(
            index=move.index,
            debit_id=self.wallet_ids[move.debit],
            credit_id=credit_id,
            amount_minor=move.amount_minor,
            key=move.key,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """One fresh database: the URL purse uses, and how bare SQL reaches the same one."""

    database_url: str
    sqlite_path: Path | None = None  # SQLite
    conninfo: str | None = None  # PostgreSQL, for psycopg

    @property
    def is_sqlite(self) -> bool:
        return self.sqlite_path is not None


@dataclass(slots=True)
class WorkerResult:
    done: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None


ApplyChunk = Callable[[Sequence[Transfer]], int]  # returns how many were applied


def make_workload(*, transfers: int, accounts: int, hot_share: float) -> list[Move]:
    """The same transfers every run: a fixed seed, small amounts, distinct wallets."""
    rng = random.Random(SEED)  # a reproducible workload, not a secret
    moves: list[Move] = []
    for index in range(transfers):
        debit = rng.randrange(accounts)
        if rng.random() < hot_share:
            credit = HOT
        else:
            credit = rng.randrange(accounts - 1)
            credit += 1 if credit >= debit else 0
        amount = rng.randint(1, AMOUNT_MAX_MINOR)
        moves.append(Move(index, debit, credit, amount, f"bench-{index}"))
    return moves


def chunks(items: Sequence[Transfer], size: int) -> list[Sequence[Transfer]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
