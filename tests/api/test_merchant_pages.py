"""The dashboard's payment forms with bad input: each refusal is shown on the payment's page
with its code, and the payment is as it was. Both databases."""

from __future__ import annotations

from typing import Any

import pytest

from api_support import Api
from merchant_support import PAYMENT, key_post, make_key, open_shop
from wallet_support import PASSWORD


def browser_of(api: Api, handle: str) -> str:
    """Sign ``handle`` in on the web (the test client keeps the cookies); the CSRF token."""
    api.client.cookies.clear()
    assert api.client.get("/signin").status_code == 200
    token = str(api.client.cookies["purse_csrf"])
    signed = api.client.post(
        "/signin",
        data={"identifier": handle, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    return str(api.client.cookies["purse_csrf"])


@pytest.fixture
def held(api: Api, wang: dict[str, str], zhang: dict[str, str]) -> dict[str, Any]:
    """Wang's shop, and a payment Zhang approved (its money held)."""
    shop = open_shop(api, wang)
    secret = make_key(api, wang, shop["id"], mode="live")["secret"]
    api.top_up(zhang, "50.00")
    payment = key_post(api, secret, "/v1/merchant/payments", PAYMENT).json()
    approved = api.post(f"/v1/checkout/{payment['reference']}/approve", zhang, None)
    assert approved.status_code == 200, approved.text
    return {"shop": shop["id"], "reference": payment["reference"], "secret": secret}


def status_of(api: Api, held: dict[str, Any]) -> tuple[str, str]:
    found = api.client.get(
        f"/v1/merchant/payments/{held['reference']}",
        headers={"Authorization": f"Bearer {held['secret']}"},
    ).json()
    return found["status"], found["captured"]["value"]


@pytest.mark.parametrize(
    ("action", "form", "status", "code"),
    [
        ("capture", {"amount": "abc"}, 422, "amount_invalid"),
        ("capture", {"amount": "32.01"}, 422, "capture_exceeds_authorization"),
        ("capture", {"amount": "-1"}, 422, "amount_not_positive"),
        ("capture", {"idempotency_key": ""}, 422, "idempotency_key_invalid"),
        ("refund", {"amount": "1"}, 409, "payment_not_captured"),
        ("refund", {"reason": "because"}, 422, "refund_reason_invalid"),
    ],
)
def test_a_bad_dashboard_form_is_shown_again_and_changes_nothing(
    api: Api, held: dict[str, Any], action: str, form: dict[str, str], status: int, code: str
) -> None:
    token = browser_of(api, "wang_wei")
    before = status_of(api, held)
    answer = api.client.post(
        f"/merchant/{held['shop']}/payments/{held['reference']}/{action}",
        data={"csrf_token": token, "idempotency_key": "form-1", **form},
        follow_redirects=False,
    )
    assert answer.status_code == status, answer.text[:300]
    assert f'data-code="{code}"' in answer.text
    assert status_of(api, held) == before == ("authorized", "0.00")


def test_the_forms_refuse_a_missing_token_and_people_off_the_team(
    api: Api, held: dict[str, Any]
) -> None:
    path = f"/merchant/{held['shop']}/payments/{held['reference']}/capture"
    browser_of(api, "wang_wei")
    missing = api.client.post(path, data={"idempotency_key": "k"}, follow_redirects=False)
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    token = browser_of(api, "zhang_wei")  # the customer, not on the shop's team
    other = api.client.post(
        path, data={"csrf_token": token, "idempotency_key": "k"}, follow_redirects=False
    )
    assert other.status_code == 404
    assert status_of(api, held) == ("authorized", "0.00")
    # A control character is refused before any page is drawn, as for every form.
    token = browser_of(api, "wang_wei")
    control = api.client.post(
        path,
        data={"csrf_token": token, "idempotency_key": "k", "fulfilment_reference": "SHIP\u0000"},
        follow_redirects=False,
    )
    assert control.status_code == 422 and control.json()["code"] == "text_control_character"
    assert status_of(api, held) == ("authorized", "0.00")
