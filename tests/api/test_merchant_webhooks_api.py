"""Webhook endpoints through the API: registered by owners and developers, the secret shown
once, refused URLs and event types, another merchant's endpoints not found, the log read
by the team, and a resend that keeps the message id. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from api_support import Api
from merchant_support import check_problem, make_key, open_shop
from purse.merchants.models import WebhookDelivery, WebhookEndpoint

HOOK = {
    "url": "https://shop.example.com/purse/webhooks",
    "mode": "live",
    "event_types": ["payment.captured", "payment.authorized"],
    "description": "Order service",
}


def hooks(api: Api, merchant_id: int) -> str:
    return f"/v1/merchants/{merchant_id}/webhook-endpoints"


def count(api: Api, model: type) -> int:
    return int(
        api.database.run(lambda s: s.scalar(select(func.count()).select_from(model)), write=False)
        or 0
    )


def test_an_endpoint_is_registered_with_its_secret_shown_once(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    made = api.client.post(hooks(api, shop["id"]), json=HOOK, headers=wang)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_") and body["status"] == "enabled"
    assert body["event_types"] == ["payment.authorized", "payment.captured"]  # stable order
    listed = api.client.get(hooks(api, shop["id"]), headers=wang).json()
    assert [item["id"] for item in listed] == [body["id"]] and "secret" not in listed[0]
    stored = api.database.run(lambda s: s.scalar(select(WebhookEndpoint.secret_encrypted)))
    assert body["secret"] not in str(stored) and body["secret"][6:] not in str(stored)

    rotated = api.client.post(
        f"{hooks(api, shop['id'])}/{body['id']}/rotate-secret",
        json={"overlap_seconds": 600},
        headers=wang,
    )
    assert rotated.status_code == 201 and rotated.json()["secret"] != body["secret"]
    assert rotated.json()["previous_secret_until"] is not None
    off = api.client.post(f"{hooks(api, shop['id'])}/{body['id']}/disable", headers=wang)
    assert off.json()["status"] == "disabled" and off.json()["disabled_reason"] == "by_merchant"
    on = api.client.post(f"{hooks(api, shop['id'])}/{body['id']}/enable", headers=wang)
    assert on.json()["status"] == "enabled"

    # Another merchant's staff: not found, whatever they try.
    path = f"{hooks(api, shop['id'])}/{body['id']}"
    for method, suffix in (("get", ""), ("post", "/disable"), ("get", "/deliveries")):
        check_problem(
            getattr(api.client, method)(f"{path}{suffix}", headers=zhang), 404, "merchant_not_found"
        )
    other = open_shop(api, zhang)
    check_problem(
        api.client.get(f"{hooks(api, other['id'])}/{body['id']}", headers=zhang),
        404,
        "webhook_endpoint_not_found",
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"url": "ftp://shop.example.com/x"}, "webhook_url_invalid"),
        ({"url": "javascript:alert(1)"}, "webhook_url_invalid"),
        ({"url": "https://user:pw@shop.example.com/x"}, "webhook_url_invalid"),
        ({"url": "https://shop.example.com/x y"}, "webhook_url_invalid"),
        ({"url": "https:///nohost"}, "webhook_url_invalid"),
        ({"url": "https://shop.example.com/\u0000"}, "text_control_character"),
        ({"event_types": []}, "webhook_event_types_invalid"),
        ({"event_types": ["payment.stolen"]}, "webhook_event_types_invalid"),
        ({"event_types": ["payment.captured", "payment.captured"]}, "webhook_event_types_invalid"),
        ({"description": "x" * 201}, "merchant_name_invalid"),
        ({"mode": "staging"}, "validation_failed"),
        ({"secret": "whsec_mine"}, "validation_failed"),
    ],
)
def test_a_bad_endpoint_is_refused_and_nothing_is_written(
    api: Api, wang: dict[str, str], changes: dict[str, Any], code: str
) -> None:
    shop = open_shop(api, wang)
    check_problem(
        api.client.post(hooks(api, shop["id"]), json={**HOOK, **changes}, headers=wang), 422, code
    )
    assert count(api, WebhookEndpoint) == 0


def test_viewers_read_the_log_but_only_owners_and_developers_manage_endpoints(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    api.client.post(
        f"/v1/merchants/{shop['id']}/members",
        json={"handle": "zhang_wei", "role": "viewer"},
        headers=wang,
    )
    check_problem(
        api.client.post(hooks(api, shop["id"]), json=HOOK, headers=zhang),
        403,
        "merchant_permission_denied",
    )
    made = api.client.post(hooks(api, shop["id"]), json=HOOK, headers=wang).json()
    assert api.client.get(hooks(api, shop["id"]), headers=zhang).status_code == 200
    check_problem(
        api.client.post(f"{hooks(api, shop['id'])}/{made['id']}/disable", headers=zhang),
        403,
        "merchant_permission_denied",
    )


def test_a_payment_step_makes_a_delivery_and_a_resend_keeps_its_id(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    secret = make_key(api, wang, shop["id"], mode="live", scopes=["payments"])["secret"]
    made = api.client.post(hooks(api, shop["id"]), json=HOOK, headers=wang).json()
    api.top_up(zhang, "50.00")
    payment = api.post(
        "/v1/merchant/payments",
        {"Authorization": f"Bearer {secret}"},
        {"amount": {"value": "5.00", "currency": "CNY"}, "description": "tea"},
    ).json()
    assert api.post(f"/v1/checkout/{payment['reference']}/approve", zhang, None).status_code == 200
    log = api.client.get(f"{hooks(api, shop['id'])}/{made['id']}/deliveries", headers=wang).json()
    assert [item["event_type"] for item in log] == ["payment.authorized"]
    assert log[0]["status"] == "pending" and log[0]["message_id"].startswith("msg_")
    assert payment["reference"] in log[0]["body"]
    again = api.client.post(
        f"/v1/merchants/{shop['id']}/webhook-deliveries/{log[0]['id']}/resend", headers=wang
    )
    assert again.status_code == 200 and again.json()["message_id"] == log[0]["message_id"]
    check_problem(
        api.client.post(
            f"/v1/merchants/{shop['id']}/webhook-deliveries/{log[0]['id'] + 99}/resend",
            headers=wang,
        ),
        404,
        "webhook_delivery_not_found",
    )
    assert count(api, WebhookDelivery) == 1
