"""A merchant payment from checkout to refund, through the API, on both databases.

The customer approves (a hold on their wallet), the merchant's server captures (all or
part), voids, or lets it expire, and refunds. Each refusal is problem+json with a stable
code and moves nothing; the ledger check runs after every test (the ``api`` fixture).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from api_support import Api
from merchant_support import PAYMENT, as_key, check_problem, key_post, make_key, open_shop
from purse.merchants import capture
from purse.merchants.models import MerchantPayment, MerchantPaymentEvent
from purse.models import utc_now
from purse.notify.models import OutboxMessage

LIVE = {"mode": "live", "scopes": ["payments", "refunds", "read"]}


def money(value: str) -> dict[str, str]:
    return {"value": value, "currency": "CNY"}


class Shop:
    """Wang's coffee shop, its live key, and a customer (Zhang) with 100.00 in her wallet."""

    def __init__(self, api: Api, owner: dict[str, str], customer: dict[str, str]) -> None:
        self.api, self.owner, self.customer = api, owner, customer
        self.merchant = open_shop(api, owner)
        self.secret = make_key(api, owner, self.merchant["id"], **LIVE)["secret"]
        api.top_up(customer, "100.00")

    def pay(self, **changes: Any) -> dict[str, Any]:
        made = key_post(self.api, self.secret, "/v1/merchant/payments", {**PAYMENT, **changes})
        assert made.status_code == 201, made.text
        return dict(made.json())

    def approve(self, reference: str, auth: dict[str, str] | None = None, key: str = "") -> Any:
        return self.api.post(f"/v1/checkout/{reference}/approve", auth or self.customer, None, key)

    def approved(self, **changes: Any) -> dict[str, Any]:
        payment = self.pay(**changes)
        answer = self.approve(payment["reference"])
        assert answer.status_code == 200, answer.text
        return payment

    def step(self, reference: str, action: str, body: Any = None, key: str | None = "") -> Any:
        path = f"/v1/merchant/payments/{reference}/{action}"
        return key_post(self.api, self.secret, path, body, key)

    def payment(self, reference: str) -> dict[str, Any]:
        found = self.api.client.get(
            f"/v1/merchant/payments/{reference}", headers=as_key(self.secret)
        )
        assert found.status_code == 200, found.text
        return dict(found.json())

    def balance(self) -> dict[str, Any]:
        """The shop's live settlement balance in CNY, as its server reads it."""
        found = self.api.client.get("/v1/merchant/balance", headers=as_key(self.secret))
        assert found.status_code == 200, found.text
        [cny] = found.json()
        return {key: cny[key] for key in ("available", "held_for_you")}

    def available(self) -> str:
        return str(self.api.balance(self.customer)["available"]["value"])

    def activity(self) -> list[dict[str, Any]]:
        found = self.api.client.get("/v1/wallet/activity", headers=self.customer).json()
        return [item for item in found["items"] if item["kind"] in ("payment", "refund")]

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused step must leave as it was."""

        def read(session: Any) -> tuple[Any, ...]:
            payments = session.execute(
                select(
                    MerchantPayment.status,
                    MerchantPayment.captured_minor,
                    MerchantPayment.refunded_minor,
                    MerchantPayment.fulfilment_reference,
                ).order_by(MerchantPayment.id)
            ).all()
            events = session.execute(select(MerchantPaymentEvent.id)).all()
            return [tuple(row) for row in payments], len(events)

        return (*self.api.database.run(read, write=False), self.available())


@pytest.fixture
def shop(api: Api, wang: dict[str, str], zhang: dict[str, str]) -> Shop:
    return Shop(api, wang, zhang)


def told(api: Api, template: str) -> int:
    return len(
        api.database.run(
            lambda s: s.execute(
                select(OutboxMessage.id).where(OutboxMessage.template == template)
            ).all(),
            write=False,
        )
    )


def test_approve_holds_capture_takes_part_and_refunds_come_back_at_once(shop: Shop) -> None:
    payment = shop.pay(amount=money("30.00"))
    reference = payment["reference"]
    seen = shop.api.client.get(f"/v1/checkout/{reference}", headers=shop.customer).json()
    assert seen["status"] == "requires_approval" and not seen["yours"]
    assert seen["merchant"]["name"] == "Lotus Coffee" and seen["amount"] == money("30.00")

    approved = shop.approve(reference)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "authorized" and approved.json()["yours"]
    assert shop.available() == "70.00"
    [held] = shop.activity()
    assert held["kind"] == "payment" and held["status"] == "pending"
    assert held["merchant_payment"]["merchant"]["name"] == "Lotus Coffee"
    assert held["merchant_payment"]["order_reference"] == "ORDER-1042"
    assert held["merchant_payment"]["held_until"] is not None
    assert held["initiator"]["kind"] == "user_session"
    authorized = shop.payment(reference)
    assert authorized["status"] == "authorized" and authorized["authorized_until"] is not None
    assert shop.balance() == {"available": money("0.00"), "held_for_you": money("30.00")}

    again = shop.approve(reference)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"

    taken = shop.step(
        reference,
        "capture",
        {"amount": money("25.00"), "fulfilment_reference": "SHIP-1"},
        key="cap-1",
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "captured" and taken.json()["captured"] == money("25.00")
    assert shop.available() == "75.00"  # the 5.00 not taken came back
    assert shop.balance() == {"available": money("25.00"), "held_for_you": money("0.00")}
    staff = shop.api.client.get(
        f"/v1/merchants/{shop.merchant['id']}/balance", headers=shop.owner
    ).json()
    assert staff == [{"mode": "live", "available": money("25.00"), "held_for_you": money("0.00")}]
    [paid] = shop.activity()
    assert paid["status"] == "completed"
    assert paid["merchant_payment"]["captured"] == money("25.00")
    assert paid["merchant_payment"]["fulfilment_reference"] == "SHIP-1"
    assert paid["merchant_payment"]["held_until"] is None
    assert told(shop.api, "payment_captured") == 1

    replay = shop.step(
        reference,
        "capture",
        {"amount": money("25.00"), "fulfilment_reference": "SHIP-1"},
        key="cap-1",
    )
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == taken.json()

    refund = shop.step(reference, "refunds", {"amount": money("10.00"), "reason": "duplicate"})
    assert refund.status_code == 201, refund.text
    assert refund.json()["reference"].startswith("re_")
    assert refund.json()["amount"] == money("10.00") and refund.json()["reason"] == "duplicate"
    assert shop.available() == "85.00"
    check_problem(
        shop.step(reference, "refunds", {"amount": money("15.01")}), 422, "refund_exceeds_captured"
    )
    rest = shop.step(reference, "refunds", {})
    assert rest.status_code == 201 and rest.json()["amount"] == money("15.00")
    assert shop.available() == "100.00"
    check_problem(shop.step(reference, "refunds", {}), 422, "refund_exceeds_captured")
    assert shop.balance() == {"available": money("0.00"), "held_for_you": money("0.00")}

    listed = shop.api.client.get(
        f"/v1/merchant/payments/{reference}/refunds", headers=as_key(shop.secret)
    ).json()
    assert [item["amount"]["value"] for item in listed] == ["10.00", "15.00"]
    final = shop.payment(reference)
    assert final["refunded"] == money("25.00") and final["captured"] == money("25.00")
    refunds = [item for item in shop.activity() if item["kind"] == "refund"]
    assert len(refunds) == 2 and all(item["direction"] == "in" for item in refunds)
    assert refunds[0]["merchant_payment"]["payment_reference"] == reference
    assert refunds[0]["initiator"]["kind"] == "merchant_key"
    assert told(shop.api, "refund_received") == 2


def test_automatic_capture_takes_the_money_when_the_customer_approves(shop: Shop) -> None:
    payment = shop.approved(capture_method="automatic", amount=money("12.00"))
    found = shop.payment(payment["reference"])
    assert found["status"] == "captured" and found["captured"] == money("12.00")
    assert shop.available() == "88.00"
    [paid] = shop.activity()
    assert paid["status"] == "completed"
    check_problem(shop.step(payment["reference"], "void"), 409, "payment_already_captured")
    check_problem(shop.step(payment["reference"], "capture", {}), 409, "payment_already_captured")


def test_a_void_releases_the_hold_and_nothing_is_taken(shop: Shop) -> None:
    payment = shop.approved(amount=money("40.00"))
    assert shop.available() == "60.00"
    voided = shop.step(payment["reference"], "void", key="void-1")
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "voided" and voided.json()["released_at"] is not None
    assert shop.available() == "100.00"
    [released] = shop.activity()
    assert released["status"] == "failed" and released["failure"]["code"] == "payment_voided"
    assert told(shop.api, "payment_released") == 1
    again = shop.step(payment["reference"], "void", key="void-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    check_problem(shop.step(payment["reference"], "void"), 409, "payment_voided")
    check_problem(shop.step(payment["reference"], "capture", {}), 409, "payment_voided")
    check_problem(shop.step(payment["reference"], "refunds", {}), 409, "payment_not_captured")


def test_an_authorization_that_runs_out_is_released_and_cannot_be_captured(shop: Shop) -> None:
    payment = shop.approved(amount=money("20.00"))
    until = shop.payment(payment["reference"])["authorized_until"]
    assert until is not None
    later = utc_now() + timedelta(days=7, seconds=5)
    operations = shop.api.client.app.state.purse.operations  # type: ignore[attr-defined]
    expired = shop.api.database.run(
        lambda s: capture.expire_authorizations(s, operations=operations, now=later)
    )
    assert expired == 1
    assert shop.payment(payment["reference"])["status"] == "expired"
    assert shop.available() == "100.00"
    [released] = shop.activity()
    assert released["failure"]["code"] == "payment_authorization_expired"
    check_problem(
        shop.step(payment["reference"], "capture", {}), 409, "payment_authorization_expired"
    )
    check_problem(shop.step(payment["reference"], "void"), 409, "payment_authorization_expired")


def test_no_charge_without_fulfilment_needs_a_reference_to_capture(shop: Shop) -> None:
    changed = shop.api.client.patch(
        f"/v1/merchants/{shop.merchant['id']}",
        json={"capture_requires_fulfilment": True},
        headers=shop.owner,
    )
    assert changed.status_code == 200 and changed.json()["capture_requires_fulfilment"]
    payment = shop.approved()
    before = shop.snapshot()
    check_problem(
        shop.step(payment["reference"], "capture", {}), 422, "fulfilment_reference_required"
    )
    assert shop.snapshot() == before
    taken = shop.step(payment["reference"], "capture", {"fulfilment_reference": "Table 7 served"})
    assert taken.status_code == 200 and taken.json()["fulfilment_reference"] == "Table 7 served"
    seen = shop.api.client.get(f"/v1/checkout/{payment['reference']}", headers=shop.customer)
    assert seen.json()["fulfilment_reference"] == "Table 7 served"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": money("32.01")}, 422, "capture_exceeds_authorization"),
        ({"amount": {"value": "1.00", "currency": "USD"}}, 422, "payment_currency_mismatch"),
        ({"amount": money("1.001")}, 422, "amount_scale_exceeded"),
        ({"amount": money("-1.00")}, 422, "amount_not_positive"),
        ({"amount": money("9" * 30)}, 422, "amount_out_of_range"),
        ({"amount": 5}, 422, "validation_failed"),
        ({"fulfilment_reference": "SHIP\u0000"}, 422, "text_control_character"),
        ({"fulfilment_reference": "x" * 129}, 422, "merchant_name_invalid"),
        ({"captured": money("1.00")}, 422, "validation_failed"),
    ],
)
def test_a_bad_capture_is_refused_and_changes_nothing(
    shop: Shop, body: Any, status: int, code: str
) -> None:
    payment = shop.approved()
    before = shop.snapshot()
    check_problem(shop.step(payment["reference"], "capture", body), status, code)
    assert shop.snapshot() == before


def test_refusals_around_the_flow_change_nothing(
    shop: Shop, api: Api, wang: dict[str, str]
) -> None:
    waiting = shop.pay()
    reference = waiting["reference"]
    before = shop.snapshot()
    check_problem(shop.step(reference, "capture", {}), 409, "payment_not_authorized")
    check_problem(shop.step(reference, "refunds", {}), 409, "payment_not_captured")
    check_problem(shop.step(reference, "capture", {}, key=None), 400, "idempotency_key_missing")
    # The customer cannot capture or refund: a person's token is not a key.
    path = f"/v1/merchant/payments/{reference}/capture"
    check_problem(api.post(path, shop.customer, {}), 401, "api_key_invalid")
    # A merchant's key cannot approve for the customer.
    check_problem(
        api.post(f"/v1/checkout/{reference}/approve", as_key(shop.secret), None),
        401,
        "session_invalid",
    )
    # A test key does not see a live payment; a key without the scope may not act.
    test_key = make_key(api, wang, shop.merchant["id"])["secret"]
    check_problem(
        key_post(api, test_key, f"/v1/merchant/payments/{reference}/void"), 404, "payment_not_found"
    )
    read_only = make_key(api, wang, shop.merchant["id"], mode="live", scopes=["read"])["secret"]
    check_problem(key_post(api, read_only, path, {}), 403, "api_key_scope_missing")
    no_refunds = make_key(api, wang, shop.merchant["id"], mode="live", scopes=["payments"])
    refunds_path = f"/v1/merchant/payments/{reference}/refunds"
    check_problem(
        key_post(api, no_refunds["secret"], refunds_path, {}), 403, "api_key_scope_missing"
    )
    revoked = make_key(api, wang, shop.merchant["id"], **LIVE)
    api.client.post(
        f"/v1/merchants/{shop.merchant['id']}/api-keys/{revoked['id']}/revoke", headers=wang
    )
    check_problem(key_post(api, revoked["secret"], path, {}), 401, "api_key_invalid")
    check_problem(shop.step("pay_AAAAAAAAAAAAAAAA", "capture", {}), 404, "payment_not_found")
    assert shop.snapshot() == before

    # Approved by Zhang: nobody else sees it, or approves it.
    assert shop.approve(reference).status_code == 200
    li = api.user("li_na", "Li Na", email="li.na@example.com")
    check_problem(api.client.get(f"/v1/checkout/{reference}", headers=li), 404, "payment_not_found")
    check_problem(shop.approve(reference, auth=li), 404, "payment_not_found")
    # One key, one request: the key of a capture cannot void.
    assert shop.step(reference, "capture", {"amount": money("1.00")}, key="k-1").status_code == 200
    check_problem(shop.step(reference, "void", key="k-1"), 422, "idempotency_key_reused")


def test_a_customer_cannot_approve_more_than_they_have_or_too_late(shop: Shop, api: Api) -> None:
    big = shop.pay(amount=money("100.01"))
    before = shop.snapshot()
    check_problem(shop.approve(big["reference"]), 409, "insufficient_funds")
    assert shop.snapshot() == before
    assert shop.activity() == []

    late = shop.pay()
    api.database.run(
        lambda s: s.execute(
            MerchantPayment.__table__.update()  # type: ignore[attr-defined]
            .where(MerchantPayment.reference == late["reference"])
            .values(approve_by=utc_now() - timedelta(seconds=1))
        )
    )
    check_problem(shop.approve(late["reference"]), 409, "payment_not_approvable")
    check_problem(
        api.client.get("/v1/checkout/pay_AAAAAAAAAAAAAAAA", headers=shop.customer),
        404,
        "payment_not_found",
    )


def test_test_mode_moves_test_money_only(shop: Shop, api: Api, wang: dict[str, str]) -> None:
    test_key = make_key(api, wang, shop.merchant["id"], mode="test", scopes=["payments", "refunds"])
    made = key_post(
        api, test_key["secret"], "/v1/merchant/payments", {**PAYMENT, "amount": money("500.00")}
    )
    reference = made.json()["reference"]
    seen = api.client.get(f"/v1/checkout/{reference}", headers=shop.customer).json()
    assert seen["test_mode"]
    assert shop.approve(reference).status_code == 200  # more than her 100.00: test money
    assert shop.available() == "100.00"
    path = f"/v1/merchant/payments/{reference}"
    taken = key_post(api, test_key["secret"], f"{path}/capture", {})
    assert taken.status_code == 200 and taken.json()["captured"] == money("500.00")
    refund = key_post(api, test_key["secret"], f"{path}/refunds", {"amount": money("1.00")})
    assert refund.status_code == 201
    assert shop.available() == "100.00" and shop.activity() == []
    assert told(api, "payment_captured") == 0 and told(api, "refund_received") == 0


def test_refund_abuse_twice_above_the_capture_or_to_someone_else_is_refused(
    shop: Shop, api: Api
) -> None:
    payment = shop.approved(amount=money("20.00"))
    reference = payment["reference"]
    assert shop.step(reference, "capture", {}).status_code == 200
    assert shop.available() == "80.00"
    first = shop.step(reference, "refunds", {"amount": money("15.00")}, key="refund-1")
    assert first.status_code == 201
    # The same request again (a retry): the same refund, no second one.
    again = shop.step(reference, "refunds", {"amount": money("15.00")}, key="refund-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    check_problem(
        shop.step(reference, "refunds", {"amount": money("5.01")}), 422, "refund_exceeds_captured"
    )
    # A refund goes back to the wallet the money came from: no field names another.
    for field, value in (("to", "wang_wei"), ("destination", "user:1"), ("account_id", 1)):
        body = {"amount": money("1.00"), field: value}
        check_problem(shop.step(reference, "refunds", body), 422, "validation_failed")
    assert shop.available() == "95.00"  # the one refund, once
    listed = api.client.get(
        f"/v1/merchant/payments/{reference}/refunds", headers=as_key(shop.secret)
    ).json()
    assert [item["amount"]["value"] for item in listed] == ["15.00"]
