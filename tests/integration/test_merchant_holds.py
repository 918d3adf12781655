"""Merchant payments' holds under concurrency, on both databases.

Capture, void and expiry race for the same holds: each payment ends once, one way, and
never takes more than was held. Two people approving one payment make one hold. Refunds
racing for one payment never give back more than was captured. The ledger check runs
after every test (the ``purse`` fixture).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import race
from merchant_support import AMOUNT, Setup
from purse.assembly import Purse
from purse.errors import PurseError
from purse.ledger.models import Hold
from purse.merchants import capture, checkout, refunds
from purse.merchants.models import MerchantPayment, MerchantPaymentEvent
from purse.merchants.rules import RefundReason
from purse.models import utc_now
from wallet_support import balance, make_user, top_up


@pytest.fixture
def setup(purse: Purse) -> Setup:
    return Setup(purse)


def test_capture_void_and_expiry_racing_end_each_hold_once(setup: Setup) -> None:
    database, operations = setup.database, setup.operations
    references = [setup.approved(f"order-{i}") for i in range(8)]
    later = utc_now() + timedelta(days=8)

    def act(index: int) -> object:
        if index >= 2 * len(references):
            return database.run(
                lambda s: capture.expire_authorizations(s, operations=operations, now=later)
            )
        reference = references[index % len(references)]
        if index < len(references):
            return database.run(
                lambda s: capture.capture(
                    s,
                    operations=operations,
                    principal=setup.key,
                    merchant_id=setup.shop,
                    mode="live",
                    reference=reference,
                    amount=("CNY", 600),
                    fulfilment_reference=None,
                    idempotency_key=f"capture-{reference}",
                    now=utc_now(),
                )
            )
        return database.run(
            lambda s: capture.void(
                s,
                operations=operations,
                principal=setup.key,
                merchant_id=setup.shop,
                mode="live",
                reference=reference,
                idempotency_key=f"void-{reference}",
                now=utc_now(),
            )
        )

    outcomes = race(2 * len(references) + 2, act)
    unexpected = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, PurseError)]
    assert not unexpected, unexpected

    def read(session: Session) -> tuple[list[tuple[str, int]], Counter[int], dict[str, str]]:
        rows = session.execute(
            select(MerchantPayment.status, MerchantPayment.captured_minor, MerchantPayment.id)
        ).all()
        ends = Counter(
            session.scalars(
                select(MerchantPaymentEvent.payment_id).where(
                    MerchantPaymentEvent.event.in_(("captured", "voided", "expired"))
                )
            ).all()
        )
        holds = dict(
            session.execute(
                select(MerchantPayment.reference, Hold.status).join(
                    Hold, Hold.transfer_id == MerchantPayment.hold_transfer_id
                )
            ).all()
        )
        return [(row.status, row.captured_minor) for row in rows], ends, dict(holds)

    statuses, ends, holds = database.run(read, write=False)
    assert all(count == 1 for count in ends.values()) and len(ends) == len(references)
    taken = 0
    for status, captured in statuses:
        assert status in ("captured", "voided", "expired")
        assert captured == (600 if status == "captured" else 0)
        taken += captured
    assert Counter(holds.values()) == Counter(
        {"captured": "posted", "voided": "voided", "expired": "expired"}[s] for s, _ in statuses
    )
    wallet = balance(database, setup.customer)
    assert wallet is not None and wallet.debits_pending == 0
    assert wallet.balance_minor == 100_000 - taken


def test_two_people_approving_one_payment_make_one_hold(setup: Setup) -> None:
    other = make_user(setup.database, setup.operations.identity, handle="other", display_name="O")
    top_up(setup.purse.wallet, other, amount_minor=100_000)
    reference = setup.created("shared")
    people = [setup.customer, other]
    outcomes = race(2, lambda i: setup.approve(reference, people[i]))
    won = [o for o in outcomes if isinstance(o, checkout.Checkout)]
    lost = [o for o in outcomes if isinstance(o, PurseError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert lost[0].code == "payment_not_found"
    holds = setup.database.run(
        lambda s: s.scalar(select(func.count()).select_from(Hold)), write=False
    )
    assert holds == 1


def test_refunds_racing_never_give_back_more_than_was_captured(setup: Setup) -> None:
    database, operations = setup.database, setup.operations
    reference = setup.approved("order-refunds")
    database.run(
        lambda s: capture.capture(
            s,
            operations=operations,
            principal=setup.key,
            merchant_id=setup.shop,
            mode="live",
            reference=reference,
            amount=None,
            fulfilment_reference=None,
            idempotency_key="capture",
            now=utc_now(),
        )
    )

    def give_back(index: int) -> object:
        return database.run(
            lambda s: refunds.refund(
                s,
                operations=operations,
                principal=setup.key,
                merchant_id=setup.shop,
                mode="live",
                reference=reference,
                amount=("CNY", 300),
                reason=RefundReason.requested_by_customer,
                idempotency_key=f"refund-{index}",
                now=utc_now(),
            )
        )

    outcomes = race(6, give_back)
    given = [o for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if isinstance(o, PurseError)]
    assert len(given) == 3 and len(refused) == 3, outcomes
    assert {error.code for error in refused} == {"refund_exceeds_captured"}
    refunded = database.run(
        lambda s: s.scalar(
            select(MerchantPayment.refunded_minor).where(MerchantPayment.reference == reference)
        ),
        write=False,
    )
    assert refunded == 900
    wallet = balance(database, setup.customer)
    assert wallet is not None and wallet.balance_minor == 100_000 - AMOUNT + 900
