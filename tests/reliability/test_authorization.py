"""The authorization matrix: every route of the app, as each kind of caller, on user A's objects.

Every route in the app's route table must be classified below; a new route that
is not fails the test until someone decides who may call it. Then each route is
called, against a real server, by: nobody (anonymous), user B (with user A's
object ids in the path), a user (on admin routes) and an admin. Expected
refusals: 401 or a redirect to sign-in for nobody, a CSRF refusal for forms
without a token, 404 for someone else's object, 403 for a missing permission.
Nothing may answer 5xx, and A's objects must be unchanged afterwards.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from harness import PASSWORD, Client, Server, Summary, track
from routes import route_table

from factories import make_settings
from purse.app import create_app

PUBLIC_API = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/redoc"),
    ("GET", "/static/{path:path}"),
    ("GET", "/v1/wallet/failure-reasons"),
    ("POST", "/v1/auth/codes"),
    ("POST", "/v1/auth/password-reset"),
    ("POST", "/v1/auth/password-reset/confirm"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/signup"),
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/auth/verify"),
}
PUBLIC_PAGES = {
    ("GET", "/"),
    ("GET", "/signin"),
    ("GET", "/signup"),
    ("GET", "/verify"),
    ("GET", "/forgot"),
    ("GET", "/pay/{handle}"),
    ("GET", "/dev/mailbox"),  # 404 unless development, on this machine, unproxied
    # A shop's checkout: signed out it shows only what waits for approval (and its QR).
    ("GET", "/checkout/{reference}"),
    ("GET", "/checkout/{reference}/qr.svg"),
}
PUBLIC_FORMS = {
    ("POST", "/locale"),
    ("POST", "/signin"),
    ("POST", "/signup"),
    ("POST", "/verify"),
    ("POST", "/forgot"),
    ("POST", "/reset"),
    ("POST", "/signout"),
}
PROVIDER_CALLBACKS = {("POST", "/v1/funding/providers/{provider_name}/events")}
ADMIN_API = {
    ("GET", "/v1/admin/balances"),
    ("PUT", "/v1/admin/users/{user_id}/role"),
}
USER_API = {
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/step-up"),
    ("GET", "/v1/me"),
    ("POST", "/v1/me/2fa/recovery-codes"),
    ("DELETE", "/v1/me/2fa/totp"),
    ("POST", "/v1/me/2fa/totp"),
    ("POST", "/v1/me/2fa/totp/confirm"),
    ("POST", "/v1/me/contact"),
    ("POST", "/v1/me/contact/confirm"),
    ("POST", "/v1/me/password"),
    ("GET", "/v1/me/sessions"),
    ("POST", "/v1/me/sessions/end-others"),
    ("DELETE", "/v1/me/sessions/{session_id}"),
    ("GET", "/v1/wallet/activity"),
    ("GET", "/v1/wallet/balances"),
    ("POST", "/v1/wallet/conversions"),
    ("GET", "/v1/wallet/funding-sources"),
    ("POST", "/v1/wallet/funding-sources"),
    ("DELETE", "/v1/wallet/funding-sources/{funding_source_id}"),
    ("GET", "/v1/wallet/fx-rates"),
    ("GET", "/v1/wallet/operations/{reference}"),
    ("POST", "/v1/wallet/quotes"),
    ("GET", "/v1/wallet/receive"),
    ("GET", "/v1/wallet/receive/qr.svg"),
    ("GET", "/v1/wallet/recipients"),
    ("GET", "/v1/wallet/requests"),
    ("POST", "/v1/wallet/requests"),
    ("POST", "/v1/wallet/requests/{request_id}/cancel"),
    ("POST", "/v1/wallet/requests/{request_id}/decline"),
    ("POST", "/v1/wallet/requests/{request_id}/pay"),
    ("GET", "/v1/wallet/spending"),
    ("GET", "/v1/wallet/statements"),
    ("POST", "/v1/wallet/statements"),
    ("GET", "/v1/wallet/statements/{statement_id}"),
    ("GET", "/v1/wallet/statements/{statement_id}/file"),
    ("POST", "/v1/wallet/top-ups"),
    ("POST", "/v1/wallet/transfers"),
    ("POST", "/v1/wallet/withdrawals"),
    ("GET", "/v1/merchants"),
    ("POST", "/v1/merchants"),
    ("GET", "/v1/merchants/{merchant_id}"),
    ("GET", "/v1/merchants/{merchant_id}/api-keys"),
    ("POST", "/v1/merchants/{merchant_id}/api-keys"),
    ("POST", "/v1/merchants/{merchant_id}/api-keys/{key_id}/revoke"),
    ("POST", "/v1/merchants/{merchant_id}/api-keys/{key_id}/roll"),
    ("GET", "/v1/merchants/{merchant_id}/members"),
    ("POST", "/v1/merchants/{merchant_id}/members"),
    ("PUT", "/v1/merchants/{merchant_id}/members/{user_id}"),
    ("DELETE", "/v1/merchants/{merchant_id}/members/{user_id}"),
    ("PATCH", "/v1/merchants/{merchant_id}"),
    ("GET", "/v1/merchants/{merchant_id}/balance"),
    ("GET", "/v1/merchants/{merchant_id}/webhook-endpoints"),
    ("POST", "/v1/merchants/{merchant_id}/webhook-endpoints"),
    ("GET", "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}"),
    ("POST", "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/rotate-secret"),
    ("POST", "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/disable"),
    ("POST", "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/enable"),
    ("GET", "/v1/merchants/{merchant_id}/webhook-endpoints/{endpoint_id}/deliveries"),
    ("POST", "/v1/merchants/{merchant_id}/webhook-deliveries/{delivery_id}/resend"),
    ("GET", "/v1/checkout/{reference}"),
    ("POST", "/v1/checkout/{reference}/approve"),
}
# A merchant's server, with its secret API key instead of a person's token.
MERCHANT_API = {
    ("GET", "/v1/merchant"),
    ("POST", "/v1/merchant/payments"),
    ("GET", "/v1/merchant/payments"),
    ("GET", "/v1/merchant/payments/{reference}"),
    ("POST", "/v1/merchant/payments/{reference}/capture"),
    ("POST", "/v1/merchant/payments/{reference}/void"),
    ("POST", "/v1/merchant/payments/{reference}/refunds"),
    ("GET", "/v1/merchant/payments/{reference}/refunds"),
    ("GET", "/v1/merchant/balance"),
}
# Bodies that pass validation, for routes where an empty one would be refused before the
# object is looked up: the answer to someone else's object must be "not found".
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/merchants/{merchant_id}/api-keys"): {
        "name": "matrix",
        "mode": "test",
        "scopes": ["read"],
    },
    ("POST", "/v1/merchants/{merchant_id}/members"): {"handle": "user_b", "role": "owner"},
    ("PUT", "/v1/merchants/{merchant_id}/members/{user_id}"): {"role": "viewer"},
    ("PATCH", "/v1/merchants/{merchant_id}"): {"capture_requires_fulfilment": True},
    ("POST", "/v1/merchants/{merchant_id}/webhook-endpoints"): {
        "url": "https://shop.example.com/hook",
        "mode": "test",
        "event_types": ["payment.captured"],
    },
}
USER_PAGES = {
    ("GET", "/activity"),
    ("GET", "/activity/{reference}"),
    ("GET", "/activity/{reference}/receipt"),
    ("GET", "/convert"),
    ("GET", "/funding-sources"),
    ("GET", "/home"),
    ("GET", "/receive"),
    ("GET", "/receive/qr.svg"),
    ("GET", "/request"),
    ("GET", "/security"),
    ("GET", "/security/password"),
    ("GET", "/send"),
    ("GET", "/send/recipient"),
    ("GET", "/statements"),
    ("GET", "/statements/{statement_id}"),
    ("GET", "/statements/{statement_id}/download"),
    ("GET", "/top-up"),
    ("GET", "/withdraw"),
    ("GET", "/merchant"),
    ("GET", "/merchant/{merchant_id}"),
    ("GET", "/merchant/{merchant_id}/payments/{reference}"),
    ("GET", "/merchant/{merchant_id}/webhooks"),
    ("GET", "/merchant/{merchant_id}/keys"),
    ("GET", "/merchant/{merchant_id}/team"),
}
USER_FORMS = {
    ("POST", "/convert/confirm"),
    ("POST", "/convert/quote"),
    ("POST", "/funding-sources"),
    ("POST", "/funding-sources/{funding_source_id}/remove"),
    ("POST", "/request"),
    ("POST", "/requests/{request_id}/pay"),
    ("POST", "/requests/{request_id}/{answer}"),
    ("POST", "/security/2fa/confirm"),
    ("POST", "/security/2fa/disable"),
    ("POST", "/security/2fa/recovery-codes"),
    ("POST", "/security/2fa/start"),
    ("POST", "/security/password"),
    ("POST", "/security/sessions/end-others"),
    ("POST", "/security/sessions/{session_id}/end"),
    ("POST", "/security/step-up"),
    ("POST", "/send"),
    ("POST", "/send/confirm"),
    ("POST", "/statements"),
    ("POST", "/top-up"),
    ("POST", "/withdraw"),
    ("POST", "/checkout/{reference}/approve"),
    ("POST", "/merchant/{merchant_id}/payments/{reference}/capture"),
    ("POST", "/merchant/{merchant_id}/payments/{reference}/void"),
    ("POST", "/merchant/{merchant_id}/payments/{reference}/refund"),
    ("POST", "/merchant/{merchant_id}/webhooks/deliveries/{delivery_id}/resend"),
    ("POST", "/merchant/{merchant_id}/keys"),
    ("POST", "/merchant/{merchant_id}/keys/{key_id}/roll"),
    ("POST", "/merchant/{merchant_id}/keys/{key_id}/revoke"),
}
CLASSES: dict[str, set[tuple[str, str]]] = {
    "public_api": PUBLIC_API,
    "public_page": PUBLIC_PAGES,
    "public_form": PUBLIC_FORMS,
    "provider_callback": PROVIDER_CALLBACKS,
    "admin_api": ADMIN_API,
    "user_api": USER_API,
    "user_page": USER_PAGES,
    "user_form": USER_FORMS,
    "merchant_api": MERCHANT_API,
}
PARAMETER = re.compile(r"\{(\w+)\}")


def classify(route: tuple[str, str]) -> str | None:
    return next((name for name, routes in CLASSES.items() if route in routes), None)


def test_every_route_is_classified_once(tmp_path: Path) -> None:
    routes = route_table(create_app(make_settings(f"sqlite:///{tmp_path}/routes.db")))
    unclassified = [route for route in routes if classify(route) is None]
    assert not unclassified, f"decide who may call these, then classify them: {unclassified}"
    listed = [route for routes in CLASSES.values() for route in routes]
    assert len(listed) == len(set(listed)), "a route is in two classes"
    assert set(listed) <= set(routes), f"classified but gone: {set(listed) - set(routes)}"


def _web_session(base_url: str, handle: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in through the sign-in form; returns it and its CSRF token."""
    browser = track(httpx.Client(base_url=base_url, timeout=10, follow_redirects=False))
    browser.get("/signin")
    token = browser.cookies["purse_csrf"]
    signed = browser.post(
        "/signin", data={"identifier": handle, "password": PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 303, signed.text
    return browser, token


def test_authorization_matrix(
    database_url: str, database_kind: str, seeded: Callable[..., None]
) -> None:
    seeded(people={"user_a": 50_000, "user_b": 50_000, "user_c": 0}, admins=["root_admin"])
    routes = route_table(create_app(make_settings(database_url)))
    cells: Counter[str] = Counter()
    unexpected: list[str] = []
    server_errors: list[str] = []

    with Server(database_url, f"authorization-{database_kind}") as server:
        a, b, admin = (Client(server.url, h) for h in ("user_a", "user_b", "root_admin"))
        # User A's objects: a card, a top-up, a request to user C, a statement, a session.
        card = a.call(
            "POST",
            "/v1/wallet/funding-sources",
            json={
                "kind": "card",
                "number": "4242424242424242",
                "expiry_month": 12,
                "expiry_year": 2099,
                "holder_name": "A",
            },
        ).body["id"]
        topped = a.call(
            "POST",
            "/v1/wallet/top-ups",
            json={"funding_source_id": card, "amount": {"value": "5.00", "currency": "CNY"}},
            headers={"Idempotency-Key": "a-top-up"},
        ).body["reference"]
        asked = a.call(
            "POST",
            "/v1/wallet/requests",
            json={"payer": "user_c", "amount": {"value": "1.00", "currency": "CNY"}},
        ).body["id"]
        statement = a.call(
            "POST", "/v1/wallet/statements", json={"month": "2026-01", "format": "csv"}
        ).body["id"]
        merchant = a.call(
            "POST", "/v1/merchants", json={"name_en": "A's shop", "name_zh": "甲的店"}
        ).body["id"]
        key = a.call(
            "POST",
            f"/v1/merchants/{merchant}/api-keys",
            json={"name": "server", "mode": "test", "scopes": ["payments"]},
        ).body
        a_payment = a.http.post(
            "/v1/merchant/payments",
            json={"amount": {"value": "1.00", "currency": "CNY"}, "description": "coffee"},
            headers={"Authorization": f"Bearer {key['secret']}", "Idempotency-Key": "a-pay"},
        ).json()["reference"]
        # Merchant B, with a key of its own (test and live).
        b_merchant = b.call(
            "POST", "/v1/merchants", json={"name_en": "B's shop", "name_zh": "乙的店"}
        ).body["id"]
        b_keys = [
            b.call(
                "POST",
                f"/v1/merchants/{b_merchant}/api-keys",
                json={"name": mode, "mode": mode, "scopes": ["payments", "read", "refunds"]},
            ).body["secret"]
            for mode in ("test", "live")
        ]
        # A's webhook endpoint, and a delivery to it (of a second payment A approves).
        a_endpoint = a.call(
            "POST",
            f"/v1/merchants/{merchant}/webhook-endpoints",
            json={
                "url": "https://shop.example.com/hook",
                "mode": "test",
                "event_types": ["payment.authorized"],
            },
        ).body["id"]
        second = a.http.post(
            "/v1/merchant/payments",
            json={"amount": {"value": "2.00", "currency": "CNY"}, "description": "tea"},
            headers={"Authorization": f"Bearer {key['secret']}", "Idempotency-Key": "a-pay-2"},
        ).json()["reference"]
        a.http.post(f"/v1/checkout/{second}/approve", headers={"Idempotency-Key": "a-2"})
        a_delivery = a.call(
            "GET", f"/v1/merchants/{merchant}/webhook-endpoints/{a_endpoint}/deliveries"
        ).body["items"][0]["id"]
        a_me = a.call("GET", "/v1/me").body
        a_session = a.call("GET", "/v1/me/sessions").body["items"][0]["id"]
        a_objects: dict[str, Any] = {
            "reference": topped,
            "funding_source_id": card,
            "request_id": asked,
            "statement_id": statement,
            "session_id": a_session,
            "user_id": a_me["id"],
            "handle": "user_a",
            "provider_name": "simulator",
            "path": "purse.css",
            "answer": "cancel",
            "merchant_id": merchant,
            "key_id": key["id"],
            "endpoint_id": a_endpoint,
            "delivery_id": a_delivery,
        }
        for _ in range(100):  # the worker settles the top-up in the background; wait for it
            if a.call("GET", f"/v1/wallet/operations/{topped}").body["status"] != "pending":
                break
            time.sleep(0.1)
        balance_before = a.call("GET", "/v1/wallet/balances").body
        cards_before = a.call("GET", "/v1/wallet/funding-sources").body
        anonymous = track(httpx.Client(base_url=server.url, timeout=10, follow_redirects=False))
        b_browser, b_csrf = _web_session(server.url, "user_b")

        def record(cell: str, response: httpx.Response, allowed: bool) -> None:
            cells[cell.split(" ")[0]] += 1
            if response.status_code >= 500:
                server_errors.append(f"{cell} -> {response.status_code}")
            elif not allowed:
                unexpected.append(f"{cell} -> {response.status_code} {response.text[:120]}")

        for method, template in routes:
            kind = classify((method, template))
            path = PARAMETER.sub(lambda match: str(a_objects[match.group(1)]), template)
            json_body: dict[str, Any] | None = (
                VALID_BODIES.get((method, template), {})
                if method in ("POST", "PUT", "PATCH")
                else None
            )
            headers = {"Idempotency-Key": f"matrix-{method}-{template}"}

            # Nobody.
            if kind in ("user_form", "public_form"):
                response = anonymous.request(method, path, data={})
                code = (
                    response.json().get("code")
                    if "json" in response.headers.get("content-type", "")
                    else None
                )
                record(
                    f"anonymous {method} {template}",
                    response,
                    response.status_code == 403 and code == "csrf_failed",
                )
            elif kind == "provider_callback":
                response = anonymous.request(method, path, content=b"{}")
                record(f"anonymous {method} {template}", response, response.status_code == 400)
            else:
                response = anonymous.request(method, path, json=json_body, headers=headers)
                if kind in ("user_api", "admin_api", "merchant_api"):
                    record(f"anonymous {method} {template}", response, response.status_code == 401)
                elif kind == "user_page":
                    signin = response.status_code == 303 and response.headers[
                        "location"
                    ].startswith("/signin?next=")
                    record(f"anonymous {method} {template}", response, signin)
                else:
                    record(f"anonymous {method} {template}", response, True)

            # User B on A's objects (routes with an object of A in the path).
            owned = any(
                name in template
                for name in (
                    "{reference}",
                    "{funding_source_id}",
                    "{request_id}",
                    "{statement_id}",
                    "{session_id}",
                    "{merchant_id}",
                    "{key_id}",
                    "{endpoint_id}",
                    "{delivery_id}",
                )
            )
            if owned and kind == "user_api":
                response = b.http.request(method, path, json=json_body, headers=headers)
                record(f"user_b {method} {template}", response, response.status_code == 404)
            elif owned and kind == "user_page":
                response = b_browser.request(method, path)
                record(f"user_b {method} {template}", response, response.status_code == 404)
            elif owned and kind == "user_form":
                response = b_browser.request(
                    method, path, data={"csrf_token": b_csrf, "idempotency_key": "k"}
                )
                record(f"user_b {method} {template}", response, response.status_code == 404)

            # A user on admin routes; an admin on them.
            if kind == "admin_api":
                body = {"role": "admin"} if method == "PUT" else None
                response = b.http.request(method, path, json=body)
                record(f"user_b {method} {template}", response, response.status_code == 403)
                if method == "GET":
                    response = admin.http.request(method, path)
                    record(f"admin {method} {template}", response, response.status_code == 200)

        # A's merchant key is no person: every user route refuses it; its own route answers.
        as_key = {"Authorization": f"Bearer {key['secret']}"}
        for method, template in routes:
            if classify((method, template)) == "user_api":
                path = PARAMETER.sub(lambda match: str(a_objects[match.group(1)]), template)
                response = anonymous.request(method, path, headers=as_key)
                record(f"merchant_key {method} {template}", response, response.status_code == 401)
        response = anonymous.get("/v1/merchant", headers=as_key)
        record("merchant_key GET /v1/merchant", response, response.status_code == 200)

        response = anonymous.get(f"/v1/merchant/payments/{a_payment}", headers=as_key)
        record(
            "merchant_key GET /v1/merchant/payments/{reference}",
            response,
            response.status_code == 200,
        )
        # A approves the payment (test money). Nobody else sees or approves it now, and a
        # person's token (B's) is no key: B cannot capture, void or refund it.
        approved = a.http.post(
            f"/v1/checkout/{a_payment}/approve", headers={"Idempotency-Key": "a-approve"}
        )
        assert approved.status_code == 200, approved.text
        for method, suffix in (("GET", ""), ("POST", "/approve")):
            response = b.http.request(
                method, f"/v1/checkout/{a_payment}{suffix}", headers={"Idempotency-Key": "b"}
            )
            record(
                f"user_b {method} /v1/checkout/{{reference}}{suffix}",
                response,
                response.status_code == 404,
            )
        # B's browser, and anyone signed out, see only that it is done: not what or how much.
        for viewer, viewing in (("user_b", b_browser), ("anonymous", anonymous)):
            response = viewing.get(f"/checkout/{a_payment}")
            record(
                f"{viewer} GET /checkout/{{reference}} approved by A",
                response,
                response.status_code == 200 and "coffee" not in response.text,
            )
        for action in ("capture", "void", "refunds"):
            response = b.http.post(
                f"/v1/merchant/payments/{a_payment}/{action}",
                json={},
                headers={"Idempotency-Key": f"b-{action}"},
            )
            record(
                f"user_b POST /v1/merchant/payments/{{reference}}/{action}",
                response,
                response.status_code == 401,
            )
        # Merchant B's keys, of either mode, on A's payment: not found; not in B's lists.
        for b_secret in b_keys:
            as_b = {"Authorization": f"Bearer {b_secret}"}
            for action in ("capture", "void", "refunds"):
                response = anonymous.post(
                    f"/v1/merchant/payments/{a_payment}/{action}",
                    json={},
                    headers={**as_b, "Idempotency-Key": f"mb-{action}"},
                )
                record(
                    f"merchant_b POST /v1/merchant/payments/{{reference}}/{action}",
                    response,
                    response.status_code == 404,
                )
            response = anonymous.get(f"/v1/merchant/payments/{a_payment}", headers=as_b)
            record(
                "merchant_b GET /v1/merchant/payments/{reference}",
                response,
                response.status_code == 404,
            )
            response = anonymous.get("/v1/merchant/payments", headers=as_b)
            record(
                "merchant_b GET /v1/merchant/payments",
                response,
                response.status_code == 200 and response.json()["items"] == [],
            )

        # Mass assignment: fields a caller must not set are refused, not ignored.
        assignments: list[tuple[str, dict[str, Any]]] = [
            (
                "/v1/wallet/transfers",
                {"to": "user_b", "amount": {"value": "1", "currency": "CNY"}, "balance": "999"},
            ),
            (
                "/v1/wallet/transfers",
                {"to": "user_b", "amount": {"value": "1", "currency": "CNY"}, "user_id": 1},
            ),
            (
                "/v1/wallet/funding-sources",
                {
                    "kind": "card",
                    "number": "4242424242424242",
                    "expiry_month": 1,
                    "expiry_year": 2099,
                    "holder_name": "B",
                    "user_id": a_me["id"],
                },
            ),
        ]
        for path, body in assignments:
            response = b.http.post(path, json=body, headers={"Idempotency-Key": "mass"})
            record(f"mass_assignment POST {path}", response, response.status_code == 422)

        # A's objects are as they were.
        assert a.call("GET", "/v1/wallet/balances").body == balance_before
        assert a.call("GET", "/v1/wallet/funding-sources").body == cards_before
        assert a.call("GET", "/v1/wallet/requests").body["items"][0]["status"] == "open"
        assert a.call("GET", "/v1/me").body["role"] == "user"
        keys_after = a.call("GET", f"/v1/merchants/{merchant}/api-keys").body["items"]
        assert [k["works"] for k in keys_after] == [True]
        for client in (a, b, admin):
            client.close()
        anonymous.close()
        b_browser.close()

    record_ = Summary(
        "authorization_matrix",
        database_kind,
        {
            "routes": len(routes),
            "cells_tested": sum(cells.values()),
            "cells_by_caller": dict(cells),
            "unexpected_allows": len(unexpected),
            "unclassified_routes": sum(1 for route in routes if classify(route) is None),
            "5xx": len(server_errors),
        },
    ).emit()
    assert not server_errors, server_errors
    assert not unexpected, unexpected
    assert record_["unclassified_routes"] == 0
