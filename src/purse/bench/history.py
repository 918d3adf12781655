"""``purse bench history``: does reading history cost more as history grows?

A person with ten years of payments should open their activity and download
last month's statement as fast as someone who joined last week. This workload
loads one database with two users, a small one (``small`` operations) and a big
one (``size`` operations), and times the same reads for both:

* ``first_page``: the first page of activity (``purse.wallet.queries.activity``);
* ``deep_page``: a page from the middle of the history (keyset cursor);
* ``statement``: the monthly statement of the last month, with the same number of
  lines for both users (``statement_data``), so only the history behind it differs.

The figure to track is the ratio big/small of each (goal: within 2x).

How the history is loaded, as fast as purse allows without going around it:
money moves only through the ledger's batch API (``ledger.service.submit``,
``LOAD_BATCH`` groups per call and commit), so balances are the ledger's own;
each transfer's operation row carries the fields ``operations.service`` writes
for a completed send, inserted in bulk beside it in the same transaction. The
notifications a send writes to the outbox are left out unless ``verify`` is
asked for: no history read touches the outbox, and telling both parties
through ``notify_operation`` (encrypted, one message per channel) slows the
load twentyfold. With them, the history passes ``purse ledger verify``. Half
of the operations are sends by the user, half sends to them, so both sides of
activity are exercised. The history lies in the months before the statement's
month; the statement's month holds the last ``small`` operations of each user.
"""

from __future__ import annotations

import platform
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from purse import migrate
from purse.assembly import Purse, assemble
from purse.audit.service import Actor
from purse.bench.databases import DatabaseFactory, purse_database
from purse.identity.models import User
from purse.identity.rules import mask_name
from purse.identity.signup import create_verified_user
from purse.ledger import service as ledger
from purse.ledger.rules import GroupRequest, Initiator, TransferRequest
from purse.ledger.sealer import seal_everything
from purse.operations import rules as operation_rules
from purse.operations import spending
from purse.operations.accounts import PROVIDER_CLEARING, account_id, system_account, user_owner
from purse.operations.models import Operation
from purse.operations.service import LEDGER_SCOPE, notify_operation
from purse.wallet.queries import activity
from purse.wallet.statements.lines import statement_data
from purse.wallet.statements.requests import month_bounds

ASSET: Final = "CNY"

# The statement's month; all earlier history lies before it.
MONTH: Final = "2026-10"

# Groups per ledger batch (one commit each).
LOAD_BATCH: Final = 1_000

# Time between two loaded batches of history, going back from the statement's month.
BATCH_SPACING: Final = timedelta(hours=6)

PEERS: Final = 8

PAGE_SIZE: Final = 20

SIZE_MAX: Final = 10_000_000

REPEAT_MAX: Final = 1_000

ACTOR: Final = Actor(kind="system", id="bench")

INITIATOR: Final = Initiator(kind="system", id="bench", authenticated_by="system")

QUERIES: Final = ("first_page", "deep_page", "statement")


@dataclass(frozen=True, slots=True)
class _People:
    big: int
    small: int
    peers: tuple[int, ...]
    accounts: dict[int, int]  # user id -> wallet account id
    clearing: int


def _create_people(purse: Purse) -> _People:
    def create(session: Session) -> _People:
        def user(handle: str, name: str) -> int:
            return create_verified_user(
                session,
                identity=purse.identity,
                handle=handle,
                display_name=name,
                password=secrets.token_urlsafe(16),  # nobody signs in as them
                role="user",
                locale="en",
                actor=ACTOR,
                email=f"{handle}@example.com",
            )

        big = user("bench_big", "Big History")
        small = user("bench_small", "Small History")
        peers = tuple(user(f"bench_peer{i}", f"Peer {i}") for i in range(PEERS))
        accounts = {}
        for user_id in (big, small, *peers):
            found = account_id(session, owner=user_owner(user_id), asset=ASSET)
            assert found is not None
            accounts[user_id] = found
        clearing = system_account(session, kind=PROVIDER_CLEARING, asset=ASSET)
        return _People(big, small, peers, accounts, clearing)

    return purse.database.run(create)


def _fund(purse: Purse, people: _People, *, amount_minor: int, at: datetime) -> None:
    """Money in from the bank side, once per user, so every send below can be paid."""
    groups = [
        GroupRequest(
            transfers=(
                TransferRequest(
                    reason_code="bench_funding",
                    debit_account_id=people.clearing,
                    credit_account_id=account,
                    asset=ASSET,
                    amount_minor=amount_minor,
                ),
            ),
            initiator=INITIATOR,
        )
        for account in people.accounts.values()
    ]
    for result in purse.database.run(lambda s: ledger.submit(s, groups=groups, now=at)):
        result.raise_for_error()


def _load_batch(
    purse: Purse,
    people: _People,
    *,
    user_id: int,
    first: int,
    count: int,
    at: datetime,
    tell: bool,
) -> None:
    """``count`` completed sends of ``user_id`` (even: by them, odd: to them), one commit."""
    moves = []
    for number in range(first, first + count):
        peer = people.peers[number % len(people.peers)]
        sender, recipient = (user_id, peer) if number % 2 == 0 else (peer, user_id)
        moves.append((sender, recipient, 1 + number % 97, operation_rules.new_reference()))
    groups = [
        GroupRequest(
            transfers=(
                TransferRequest(
                    debit_account_id=people.accounts[sender],
                    credit_account_id=people.accounts[recipient],
                    asset=ASSET,
                    amount_minor=amount,
                    reason_code="p2p_send",
                    reference=reference,
                ),
            ),
            initiator=INITIATOR,
            idempotency_scope=LEDGER_SCOPE,
            idempotency_key=f"{reference}:send",
        )
        for sender, recipient, amount, reference in moves
    ]

    def write(session: Session) -> None:
        results = ledger.submit(session, groups=groups, now=at)
        rows = []
        for (sender, recipient, amount, reference), result in zip(moves, results, strict=True):
            result.raise_for_error()
            rows.append(
                {
                    "reference": reference,
                    "kind": "send",
                    "status": "completed",
                    "user_id": sender,
                    "counterparty_user_id": recipient,
                    "asset": ASSET,
                    "amount_minor": amount,
                    "fee_minor": 0,
                    "note": f"bench {reference[-4:]}",
                    "ledger_group_id": result.transfers[0].group_id,
                    "idempotency_key": f"bench-{reference}",
                    "fingerprint": reference,
                    "initiator_kind": INITIATOR.kind,
                    "initiator_id": INITIATOR.id,
                    "authenticated_by": INITIATOR.authenticated_by,
                    "provider_attempts": 0,
                    "created_at": at,
                    "updated_at": at,
                    "completed_at": at,
                }
            )
        session.execute(insert(Operation), rows)
        spent: dict[int, int] = {}
        for sender, _, amount, _ in moves:  # the running totals the limits read, as sends do
            spent[sender] = spent.get(sender, 0) + amount
        for sender, amount in spent.items():
            spending.count_spending(
                session, user_id=sender, asset=ASSET, amount_minor=amount, at=at
            )
        if tell:
            _tell_parties(session, purse, people, user_id=user_id, rows=rows, at=at)

    purse.database.run(write)


def _tell_parties(
    session: Session,
    purse: Purse,
    people: _People,
    *,
    user_id: int,
    rows: list[dict[str, Any]],
    at: datetime,
) -> None:
    """Tell both parties of each send, as a send tells them (the outbox rows verify looks for)."""
    names = {
        user.id: (mask_name(user.display_name), user.handle)
        for user in session.scalars(select(User).where(User.id.in_({user_id, *people.peers})))
    }
    for row in rows:
        operation = Operation(**row)
        sender, recipient = row["user_id"], row["counterparty_user_id"]
        for told, template, other, (name, handle) in (
            (recipient, "money_received", "sender", names[sender]),
            (sender, "money_sent", "recipient", names[recipient]),
        ):
            notify_operation(
                session,
                operations=purse.operations,
                user_id=told,
                template=template,
                operation=operation,
                now=at,
                **{other: name, f"{other}_handle": handle},
            )


def _load(purse: Purse, people: _People, *, size: int, small: int, tell: bool) -> None:
    start, _end = month_bounds(MONTH, purse.settings.timezone)
    history = size - small
    batches = -(-history // LOAD_BATCH)
    _fund(
        purse, people, amount_minor=100 * (size + small), at=start - BATCH_SPACING * (batches + 1)
    )
    for index in range(batches):
        first = index * LOAD_BATCH
        _load_batch(
            purse,
            people,
            user_id=people.big,
            first=first,
            count=min(LOAD_BATCH, history - first),
            at=start - BATCH_SPACING * (batches - index),
            tell=tell,
        )
    # The statement's month: the last ``small`` operations of each, the same for both.
    for offset, user_id in enumerate((people.small, people.big)):
        for first in range(0, small, LOAD_BATCH):
            _load_batch(
                purse,
                people,
                user_id=user_id,
                first=history + first if user_id == people.big else first,
                count=min(LOAD_BATCH, small - first),
                at=start + timedelta(days=1 + offset, minutes=first // LOAD_BATCH),
                tell=tell,
            )


def _middle_cursor(purse: Purse, user_id: int) -> str:
    """The id of an operation halfway down the user's history: a deep page starts there."""

    def find(session: Session) -> str:
        ids = session.scalars(
            select(Operation.id)
            .where((Operation.user_id == user_id) | (Operation.counterparty_user_id == user_id))
            .order_by(Operation.id)
        ).all()
        return str(ids[len(ids) // 2])

    return purse.database.run(find, write=False)


def _time(call: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls, after one call to warm caches."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _measure(purse: Purse, user_id: int, *, repeat: int) -> dict[str, float]:
    wallet = purse.wallet
    database = purse.database
    cursor = _middle_cursor(purse, user_id)

    def first_page() -> object:
        return database.run(
            lambda s: activity(s, wallet=wallet, user_id=user_id, limit=PAGE_SIZE), write=False
        )

    def deep_page() -> object:
        return database.run(
            lambda s: activity(s, wallet=wallet, user_id=user_id, cursor=cursor, limit=PAGE_SIZE),
            write=False,
        )

    def statement() -> object:
        data = database.run(
            lambda s: statement_data(s, wallet=wallet, user_id=user_id, month=MONTH), write=False
        )
        assert data.line_count > 0
        return data

    return {
        "first_page": _time(first_page, repeat),
        "deep_page": _time(deep_page, repeat),
        "statement": _time(statement, repeat),
    }


def run_history_bench(
    *,
    size: int = 100_000,
    small: int = 1_000,
    repeat: int = 20,
    database_url: str | None = None,
    verify: bool = False,
) -> dict[str, Any]:
    """Load a fresh database, time the reads for both users, and compare them.

    With ``verify``, what ``purse ledger verify`` checks is run on the loaded
    history first (the ledger and every operation's part of it): proof that the
    bulk load made the same records purse itself makes.
    """
    if not small <= size <= SIZE_MAX:
        raise ValueError(f"size must be between {small} and {SIZE_MAX}")
    if not 1 <= small:
        raise ValueError("small must be at least 1")
    if not 1 <= repeat <= REPEAT_MAX:
        raise ValueError(f"repeat must be between 1 and {REPEAT_MAX}")
    factory = DatabaseFactory(database_url)
    try:
        with factory.fresh("history") as target:
            db = purse_database(target, pool_size=2)
            try:
                migrate.upgrade(db)
                purse = assemble(db.settings, database=db)
                people = _create_people(purse)
                started = time.perf_counter()
                _load(purse, people, size=size, small=small, tell=verify)
                load_seconds = time.perf_counter() - started
                if verify:  # what the ledger's job does after the load, so verify walks it all
                    seal_everything(db)
                if factory.backend == "postgresql":
                    # What autovacuum does after a bulk load; until it has, the planner
                    # believes the tables are still nearly empty.
                    with db.engine.connect() as connection:
                        connection.exec_driver_sql("ANALYZE")
                        connection.commit()
                verify_ok = db.run(lambda s: purse.verify(s).ok, write=False) if verify else None
                small_ms = _measure(purse, people.small, repeat=repeat)
                big_ms = _measure(purse, people.big, repeat=repeat)
            finally:
                db.dispose()
    finally:
        factory.close()
    return {
        "workload": "history",
        "backend": factory.backend,
        "python": platform.python_version(),
        "sizes": {"small": small, "big": size},
        "month": MONTH,
        "repeat": repeat,
        "load_seconds": round(load_seconds, 2),
        "load_operations_per_second": round((size + small) / load_seconds),
        "verify_ok": verify_ok,
        "queries": {
            name: {
                "small_ms": round(small_ms[name], 3),
                "big_ms": round(big_ms[name], 3),
                "ratio": round(big_ms[name] / small_ms[name], 2),
            }
            for name in QUERIES
        },
        "goal_ratio_max": 2.0,
    }
