"""The customer's side of merchant payments: step-up before a large approval, and the
month's statement with a payment and its refund on it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from merchant_support import Setup
from purse.assembly import Purse
from purse.identity.errors import StepUpRequired
from purse.merchants.rules import RefundReason
from purse.models import utc_now
from purse.wallet.statements.lines import statement_data
from wallet_support import top_up


@pytest.fixture
def setup(purse: Purse) -> Setup:
    return Setup(purse)


def test_a_large_payment_needs_a_fresh_password_and_then_goes_through(setup: Setup) -> None:
    stale = dataclasses.replace(setup.customer, authenticated_at=utc_now() - timedelta(hours=1))
    small = setup.created("small")  # 10.00: below the large-transfer amount
    assert setup.approve(small, stale).payment.status == "authorized"
    top_up(setup.purse.wallet, setup.customer, amount_minor=100_000)
    large = setup.created("large", amount_minor=100_000)  # 1,000.00 CNY: a large transfer
    with pytest.raises(StepUpRequired):
        setup.approve(large, stale)
    assert setup.approve(large, setup.customer).payment.status == "authorized"


def test_a_payment_and_its_refund_are_on_the_customers_statement(setup: Setup) -> None:
    database = setup.database
    reference = setup.approved("order-7")
    setup.capture(reference, amount_minor=800, fulfilment="SHIP-7")
    setup.refund(reference, amount_minor=300, reason=RefundReason.duplicate)
    month = utc_now().strftime("%Y-%m")
    customer = setup.customer.user_id or 0
    data = database.run(
        lambda s: statement_data(s, wallet=setup.purse.wallet, user_id=customer, month=month),
        write=False,
    )
    lines = [line for section in data.sections for line in section.lines]
    kinds = [(line.kind, line.amount_minor) for line in lines if line.kind in ("payment", "refund")]
    assert kinds == [("payment", -800), ("refund", 300)]
    assert [line.description("en") for line in lines if line.kind == "payment"] == ["Payment"]
