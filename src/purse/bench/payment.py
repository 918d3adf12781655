"""``purse bench payment``: the merchant cycle, and the same calls without the ledger.

One cycle is what a shop and its customer do for one order, each step its own
transaction through ``Database.run``, as the API runs them: the shop's server asks for a
payment, the customer approves it (a hold on their wallet), the shop captures it and
refunds it. ``threads`` customers run cycles side by side, each on their own wallet.

The floor runs the same use cases on a fresh database of its own with the ledger taken
out: every posting the merchants' code asks for answers at once with a made-up transfer
and writes nothing. What is left is the payment's own rows, the customer's operation, the
timelines, the webhook outbox and the checks; the ratio shows what the ledger adds to a
payment. Bounded by ``cycles`` and ``seconds_max`` per side, whichever comes first.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock

from purse.assembly import Purse, assemble
from purse.audit.service import Actor
from purse.bench.databases import SECRET_KEY, DatabaseFactory
from purse.bench.stats import percentile_ms
from purse.identity.principal import Principal
from purse.identity.signup import create_verified_user
from purse.ledger.queries import TransferRecord
from purse.ledger.rules import TransferKind, TransferRequest
from purse.ledger.service import GroupResult
from purse.merchants import capture, checkout, payments, refunds, service
from purse.merchants.rules import CaptureMethod, KeyMode, RefundReason
from purse.models import utc_now
from purse.operations.accounts import PROVIDER_CLEARING, account_id, system_account, user_owner
from purse.operations.service import post_for
from purse.settings import Environment, Settings

ACTOR = Actor(kind="operator", id="bench")
SIDES = ("purse", "no_ledger")
AMOUNT_MINOR = 1_250
FUNDS_MINOR = 10**12


def run_payment_bench(
    *, threads: int, cycles: int, seconds_max: float, database_url: str | None
) -> dict[str, Any]:
    """Both sides, each on a fresh database; cycles per second and their ratio."""
    factory = DatabaseFactory(database_url)
    try:
        sides = {
            side: _run_side(factory, side, threads=threads, cycles=cycles, seconds_max=seconds_max)
            for side in SIDES
        }
    finally:
        factory.close()
    floor = float(sides["no_ledger"]["cycles_per_second"])
    return {
        "workload": "payment",
        "backend": factory.backend,
        "threads": threads,
        "cycle": ["create", "approve", "capture", "refund"],
        "sides": sides,
        "ratio": round(float(sides["purse"]["cycles_per_second"]) / floor, 3) if floor else 0.0,
    }


def _run_side(
    factory: DatabaseFactory, side: str, *, threads: int, cycles: int, seconds_max: float
) -> dict[str, Any]:
    from purse import migrate
    from purse.db import Database

    with factory.fresh(f"payment-{side}") as target:
        settings = Settings(
            database_url=target.database_url,
            secret_key=SECRET_KEY,
            env=Environment.test,
            db_pool_size=max(4, threads + 2),
            wallet_limits={},
        )
        database = Database(settings)
        try:
            migrate.upgrade(database)
            purse = assemble(settings, database=database)
            shop = _Shop(purse, customers=threads)
            with _without_ledger() if side == "no_ledger" else _as_is():
                latencies, done, errors, first_error, seconds = _cycles(
                    shop, threads=threads, cycles=cycles, seconds_max=seconds_max
                )
            # The purse side's ledger must verify after the run (the floor wrote none).
            verified = database.run(purse.verify, write=False).ok if side == "purse" else None
        finally:
            database.dispose()
    ordered = sorted(latencies)
    return {
        "cycles": done,
        "errors": errors,
        "first_error": first_error,
        "seconds": round(seconds, 3),
        "cycles_per_second": round(done / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": percentile_ms(ordered, 0.50),
        "p99_ms": percentile_ms(ordered, 0.99),
        "ledger_verified": verified,
    }


class _Shop:
    """A merchant with a live key, and ``customers`` people with money."""

    def __init__(self, purse: Purse, *, customers: int) -> None:
        self.purse = purse
        database = purse.database

        def open_all(session: Any) -> tuple[int, int, list[int]]:
            people = [
                create_verified_user(
                    session,
                    identity=purse.identity,
                    handle=f"bench_{index}",
                    display_name=f"Bench {index}",
                    password="bench-password-not-secret-1",  # noqa: S106 - bench users
                    role="user",
                    locale="en",
                    actor=ACTOR,
                    email=f"bench{index}@example.com",
                )
                for index in range(customers + 1)
            ]
            shop = service.open_merchant(
                session, user_id=people[0], name_en="Bench", name_zh="基准", actor=ACTOR
            ).merchant.id
            key, _ = service.create_api_key(
                session,
                cipher=purse.identity.cipher,
                merchant_id=shop,
                user_id=people[0],
                mode=KeyMode.live,
                name="bench",
                scopes=["payments", "refunds"],
                actor=ACTOR,
            )
            for person in people[1:]:
                wallet = account_id(session, owner=user_owner(person), asset="CNY")
                assert wallet is not None
                post_for(
                    session,
                    operations=purse.operations,
                    reference=f"fund-{person}",
                    initiator=Principal.system("bench").initiator(
                        settings=purse.settings, now=utc_now()
                    ),
                    step="fund",
                    transfers=[
                        TransferRequest(
                            debit_account_id=system_account(
                                session, kind=PROVIDER_CLEARING, asset="CNY"
                            ),
                            credit_account_id=wallet,
                            asset="CNY",
                            amount_minor=FUNDS_MINOR,
                            reason_code="bench_funding",
                        )
                    ],
                    now=utc_now(),
                )
            return shop, key.id, people[1:]

        self.merchant_id, self.key_id, self.customers = database.run(open_all)
        self.key = Principal.merchant_key(
            key_id=self.key_id,
            merchant_id=self.merchant_id,
            mode="live",
            scopes=frozenset({"payments", "refunds"}),
        )

    def cycle(self, customer: int) -> None:
        purse, database = self.purse, self.purse.database
        made, _ = database.run(
            lambda session: payments.create_payment(
                session,
                merchant_id=self.merchant_id,
                mode="live",
                key_id=self.key_id,
                idempotency_key=str(uuid.uuid4()),
                request=payments.PaymentRequest(
                    asset="CNY",
                    amount_minor=AMOUNT_MINOR,
                    description="bench coffee",
                    order_reference=None,
                    metadata={},
                    capture_method=CaptureMethod.manual,
                    approve_within_seconds=600,
                ),
            )
        )
        database.run(
            lambda session: checkout.approve(
                session,
                operations=purse.operations,
                principal=Principal.demo(customer),
                reference=made.reference,
                idempotency_key=str(uuid.uuid4()),
                now=utc_now(),
            )
        )
        database.run(
            lambda session: capture.capture(
                session,
                operations=purse.operations,
                principal=self.key,
                amount=None,
                fulfilment_reference="bench",
                idempotency_key=str(uuid.uuid4()),
                now=utc_now(),
                merchant_id=self.merchant_id,
                mode="live",
                reference=made.reference,
            )
        )
        database.run(
            lambda session: refunds.refund(
                session,
                operations=purse.operations,
                principal=self.key,
                amount=None,
                reason=RefundReason.requested_by_customer,
                idempotency_key=str(uuid.uuid4()),
                now=utc_now(),
                merchant_id=self.merchant_id,
                mode="live",
                reference=made.reference,
            )
        )


def _cycles(
    shop: _Shop, *, threads: int, cycles: int, seconds_max: float
) -> tuple[list[float], int, int, str | None, float]:
    latencies: list[float] = []
    tally = {"done": 0, "errors": 0}
    first_error: list[str] = []
    lock = threading.Lock()
    counter = itertools.count()
    deadline = time.monotonic() + seconds_max

    def work(customer: int) -> None:
        while time.monotonic() < deadline and next(counter) < cycles:
            started = time.perf_counter()
            try:
                shop.cycle(customer)
            except Exception as error:  # noqa: BLE001 - counted and reported, not hidden
                with lock:
                    tally["errors"] += 1
                    if not first_error:
                        first_error.append(f"{type(error).__name__}: {error}"[:300])
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                tally["done"] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(c,)) for c in shop.customers[:threads]]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    return latencies, tally["done"], tally["errors"], next(iter(first_error), None), seconds


@contextmanager
def _as_is() -> Iterator[None]:
    yield


@contextmanager
def _without_ledger() -> Iterator[None]:
    """The merchants' postings answered at once with made-up transfers; nothing written."""
    ids = itertools.count(1)

    def fake_post(session: Any, **kwargs: Any) -> GroupResult:
        now = kwargs["now"]
        made = []
        for request in kwargs["transfers"]:
            made.append(
                TransferRecord(
                    id=next(ids),
                    group_id=0,
                    kind=str(request.kind),
                    debit_account_id=request.debit_account_id or 0,
                    credit_account_id=request.credit_account_id or 0,
                    asset=request.asset or "CNY",
                    amount_minor=request.amount_minor or 0,
                    pending_id=request.pending_id,
                    expires_at=now + timedelta(seconds=request.timeout_seconds)
                    if request.kind is TransferKind.pending and request.timeout_seconds
                    else None,
                    reversal_of=request.reversal_of,
                    reason_code=request.reason_code,
                    reference=request.reference,
                    initiator_kind="bench",
                    initiator_id="bench",
                    authenticated_by="bench",
                    created_at=now,
                    hash=None,
                    chain_seq=None,
                )
            )
        return GroupResult(transfers=tuple(made))

    with ExitStack() as stack:
        for module in (checkout, capture, refunds):
            stack.enter_context(mock.patch.object(module, "post_for", fake_post))
        yield
