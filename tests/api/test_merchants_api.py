"""Merchants through the API: opening one, its API keys (made, shown once, revoked, rolled),
and the wall between a merchant's server and a person's wallet.

Both databases (the ``api`` fixture); every refusal is problem+json with a stable code and
leaves nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from api_support import Api
from factories import make_settings
from merchant_support import (
    KEY,
    PAYMENT,
    SHOP,
    as_key,
    check_problem,
    make_key,
    open_shop,
    rows,
    server_post,
)
from purse.app import create_app
from purse.audit.models import AuditEvent
from purse.db import Database
from purse.merchants.models import Merchant, MerchantApiKey, MerchantMember, MerchantPayment
from purse.models import utc_now


def test_a_person_opens_a_merchant_and_sees_only_their_own(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    assert shop["name_zh"] == "莲花咖啡" and shop["logo_initial"] == "L"
    assert shop["role"] == "owner" and shop["status"] == "active"
    assert api.client.get("/v1/merchants", headers=wang).json() == [shop]
    assert api.client.get(f"/v1/merchants/{shop['id']}", headers=wang).json() == shop

    # Someone else's merchant is not found, as one that does not exist.
    assert api.client.get("/v1/merchants", headers=zhang).json() == []
    check_problem(
        api.client.get(f"/v1/merchants/{shop['id']}", headers=zhang), 404, "merchant_not_found"
    )
    check_problem(api.client.get("/v1/merchants/999999", headers=wang), 404, "merchant_not_found")
    check_problem(api.client.get("/v1/merchants", headers={}), 401, "session_invalid")
    opened = api.database.run(
        lambda s: s.scalars(
            select(AuditEvent.kind).where(AuditEvent.kind == "merchant_opened")
        ).all(),
        write=False,
    )
    assert opened == ["merchant_opened"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**SHOP, "name_en": "   "}, 422, "merchant_name_invalid"),
        ({**SHOP, "name_zh": "莲花\u0000咖啡"}, 422, "text_control_character"),
        ({**SHOP, "name_zh": "咖\u202e啡"}, 422, "merchant_name_invalid"),
        ({**SHOP, "name_en": "x" * 81}, 422, "merchant_name_invalid"),
        ({**SHOP, "name_en": "x" * 10_000}, 422, "validation_failed"),
        ({**SHOP, "name_en": 12}, 422, "validation_failed"),
        ({"name_en": "Lotus"}, 422, "validation_failed"),
        ({**SHOP, "status": "closed"}, 422, "validation_failed"),
        ([SHOP], 422, "validation_failed"),
    ],
)
def test_a_merchant_with_a_bad_name_is_refused_and_nothing_is_written(
    api: Api, wang: dict[str, str], body: Any, status: int, code: str
) -> None:
    check_problem(api.client.post("/v1/merchants", json=body, headers=wang), status, code)
    assert rows(api, Merchant) == 0 and rows(api, MerchantMember) == 0


def test_an_api_key_is_shown_once_works_and_is_stored_only_as_a_keyed_hash(
    api: Api, wang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    made = make_key(api, wang, shop["id"])
    secret = made["secret"]
    assert secret.startswith("sk_test_") and len(secret) == len("sk_test_") + 43
    assert made["last4"] == secret[-4:] and made["works"] and made["last_used_at"] is None
    assert made["scopes"] == ["payments", "read"] and made["mode"] == "test"

    listed = api.client.get(f"/v1/merchants/{shop['id']}/api-keys", headers=wang).json()
    assert [key["id"] for key in listed] == [made["id"]] and "secret" not in listed[0]
    stored = api.database.run(lambda s: s.execute(text("SELECT * FROM merchant_api_keys")).one())
    assert secret not in str(tuple(stored)) and secret[8:] not in str(tuple(stored))
    audit = api.database.run(lambda s: s.execute(text("SELECT * FROM audit_events")).all())
    assert secret[8:] not in str(audit)

    me = api.client.get("/v1/merchant", headers=as_key(secret))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "merchant_id": shop["id"],
        "name_en": "Lotus Coffee",
        "name_zh": "莲花咖啡",
        "mode": "test",
        "scopes": ["payments", "read"],
    }
    used = api.client.get(f"/v1/merchants/{shop['id']}/api-keys", headers=wang).json()[0]
    assert used["last_used_at"] is not None
    live = make_key(api, wang, shop["id"], mode="live", scopes=["refunds"])
    assert live["secret"].startswith("sk_live_")
    assert api.client.get("/v1/merchant", headers=as_key(live["secret"])).json()["mode"] == "live"


def test_a_merchant_key_never_opens_a_persons_endpoints_nor_a_person_a_keys(
    api: Api, wang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    secret = make_key(api, wang, shop["id"])["secret"]
    for path in ("/v1/wallet/balances", "/v1/me", "/v1/merchants"):
        check_problem(api.client.get(path, headers=as_key(secret)), 401, "session_invalid")
    check_problem(
        api.client.post(f"/v1/merchants/{shop['id']}/api-keys", json=KEY, headers=as_key(secret)),
        401,
        "session_invalid",
    )
    check_problem(api.client.get("/v1/merchant", headers=wang), 401, "api_key_invalid")
    check_problem(api.client.get("/v1/merchant"), 401, "api_key_invalid")
    for wrong in (
        secret[:-1],
        secret[:-1] + ("A" if secret[-1] != "A" else "B"),
        secret.replace("sk_test_", "sk_live_"),
        secret + "\u0000",
        "sk_test_" + "x" * 5000,
    ):
        check_problem(api.client.get("/v1/merchant", headers=as_key(wrong)), 401, "api_key_invalid")


def test_a_revoked_key_stops_at_once_and_is_ended_once(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    key = make_key(api, wang, shop["id"])
    base = f"/v1/merchants/{shop['id']}/api-keys/{key['id']}"
    # Another person, and another merchant's owner, cannot reach it.
    check_problem(api.client.post(f"{base}/revoke", headers=zhang), 404, "merchant_not_found")
    other = open_shop(api, zhang)
    check_problem(
        api.client.post(f"/v1/merchants/{other['id']}/api-keys/{key['id']}/revoke", headers=zhang),
        404,
        "api_key_not_found",
    )
    assert api.client.get("/v1/merchant", headers=as_key(key["secret"])).status_code == 200

    revoked = api.client.post(f"{base}/revoke", headers=wang)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["works"] is False and revoked.json()["ends_at"] is not None
    check_problem(
        api.client.get("/v1/merchant", headers=as_key(key["secret"])), 401, "api_key_invalid"
    )
    check_problem(api.client.post(f"{base}/revoke", headers=wang), 409, "api_key_ended")
    check_problem(api.client.post(f"{base}/roll", json={}, headers=wang), 409, "api_key_ended")
    kinds = api.database.run(
        lambda s: s.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)).all(), write=False
    )
    assert kinds.count("merchant_api_key_revoked") == 1


def test_a_rolled_key_works_beside_its_successor_for_the_overlap(
    api: Api, wang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    old = make_key(api, wang, shop["id"])
    base = f"/v1/merchants/{shop['id']}/api-keys"
    rolled = api.client.post(
        f"{base}/{old['id']}/roll", json={"overlap_seconds": 3600}, headers=wang
    )
    assert rolled.status_code == 201, rolled.text
    new = rolled.json()
    assert new["secret"] != old["secret"] and new["name"] == old["name"]
    assert new["scopes"] == old["scopes"] and new["mode"] == old["mode"]
    for secret in (old["secret"], new["secret"]):
        assert api.client.get("/v1/merchant", headers=as_key(secret)).status_code == 200
    listed = {key["id"]: key for key in api.client.get(base, headers=wang).json()}
    assert listed[old["id"]]["rolled_to_id"] == new["id"] and listed[old["id"]]["works"]

    # Once the overlap is over, only the new key works.
    api.database.run(
        lambda s: s.execute(
            text("UPDATE merchant_api_keys SET ends_at = :at WHERE id = :id"),
            {"at": utc_now() - timedelta(seconds=1), "id": old["id"]},
        )
    )
    check_problem(
        api.client.get("/v1/merchant", headers=as_key(old["secret"])), 401, "api_key_invalid"
    )
    assert api.client.get("/v1/merchant", headers=as_key(new["secret"])).status_code == 200

    # No overlap: the old key ends with the roll.
    now = api.client.post(f"{base}/{new['id']}/roll", json={"overlap_seconds": 0}, headers=wang)
    assert now.status_code == 201, now.text
    check_problem(
        api.client.get("/v1/merchant", headers=as_key(new["secret"])), 401, "api_key_invalid"
    )
    for overlap in (-1, 7 * 24 * 3600 + 1, "1h", 1.5, 2**70):
        check_problem(
            api.client.post(
                f"{base}/{now.json()['id']}/roll", json={"overlap_seconds": overlap}, headers=wang
            ),
            422,
            "validation_failed",
        )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"scopes": ["payments", "payments"]}, "api_key_scopes_invalid"),
        ({"scopes": []}, "validation_failed"),
        ({"scopes": ["admin"]}, "validation_failed"),
        ({"scopes": "payments"}, "validation_failed"),
        ({"mode": "prod"}, "validation_failed"),
        ({"name": ""}, "merchant_name_invalid"),
        ({"name": "key\u0007"}, "text_control_character"),
        ({"name": "k" * 65}, "merchant_name_invalid"),
        ({"secret": "sk_test_mine"}, "validation_failed"),
    ],
)
def test_a_bad_key_request_is_refused_and_makes_no_key(
    api: Api, wang: dict[str, str], changes: dict[str, Any], code: str
) -> None:
    shop = open_shop(api, wang)
    response = api.client.post(
        f"/v1/merchants/{shop['id']}/api-keys", json={**KEY, **changes}, headers=wang
    )
    check_problem(response, 422, code)
    assert rows(api, MerchantApiKey) == 0


def test_only_owners_and_developers_manage_keys(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    key = make_key(api, wang, shop["id"])
    zhang_id = api.client.get("/v1/me", headers=zhang).json()["id"]

    def join_as(role: str) -> Callable[[Session], None]:
        def run(session: Session) -> None:
            session.execute(
                text("DELETE FROM merchant_members WHERE user_id = :u"), {"u": zhang_id}
            )
            session.execute(
                insert(MerchantMember).values(
                    merchant_id=shop["id"], user_id=zhang_id, role=role, created_at=utc_now()
                )
            )

        return run

    for role in ("viewer", "support", "developer"):
        api.database.run(join_as(role))
        seen = api.client.get(f"/v1/merchants/{shop['id']}", headers=zhang)
        assert seen.status_code == 200 and seen.json()["role"] == role
        listing = api.client.get(f"/v1/merchants/{shop['id']}/api-keys", headers=zhang)
        making = api.client.post(f"/v1/merchants/{shop['id']}/api-keys", json=KEY, headers=zhang)
        revoking = api.client.post(
            f"/v1/merchants/{shop['id']}/api-keys/{key['id']}/revoke", headers=zhang
        )
        if role == "developer":
            assert listing.status_code == 200 and making.status_code == 201
            assert revoking.status_code == 200
        else:
            for refused in (listing, making, revoking):
                check_problem(refused, 403, "merchant_permission_denied")
    assert rows(api, MerchantApiKey) == 2


@pytest.mark.parametrize("merchant_id", ["0", "-1", "abc", str(2**63), "1.5"])
def test_ids_in_paths_are_positive_64_bit_integers(
    api: Api, wang: dict[str, str], merchant_id: str
) -> None:
    check_problem(
        api.client.get(f"/v1/merchants/{merchant_id}", headers=wang), 422, "validation_failed"
    )


def test_making_a_key_needs_a_recent_password_confirmation(database_url: str) -> None:
    settings = make_settings(database_url, simulator_settle_seconds=0, step_up_max_age_seconds=-1)
    database = Database(settings)
    with TestClient(create_app(settings, database=database), base_url="http://127.0.0.1") as client:
        stale = Api(client=client, database=database)
        wang = stale.user("wang_wei", "Wang Wei")
        shop = open_shop(stale, wang)
        refused = client.post(f"/v1/merchants/{shop['id']}/api-keys", json=KEY, headers=wang)
        assert check_problem(refused, 403, "step_up_required")["action"] == "manage_api_keys"
        assert rows(stale, MerchantApiKey) == 0
    database.dispose()


def test_owners_build_the_team_and_a_merchant_always_keeps_an_owner(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    team = f"/v1/merchants/{shop['id']}/members"
    wang_id = api.client.get("/v1/me", headers=wang).json()["id"]
    zhang_id = api.client.get("/v1/me", headers=zhang).json()["id"]

    added = api.client.post(team, json={"handle": "@Zhang_Wei", "role": "viewer"}, headers=wang)
    assert added.status_code == 201, added.text
    assert added.json()["handle"] == "zhang_wei" and added.json()["role"] == "viewer"
    check_problem(
        api.client.post(team, json={"handle": "zhang_wei", "role": "owner"}, headers=wang),
        409,
        "merchant_member_exists",
    )
    for nobody in ("no_such_person", "zhang.wei@example.com", "+8613800138000", "!!", ""):
        check_problem(
            api.client.post(team, json={"handle": nobody, "role": "viewer"}, headers=wang),
            404,
            "user_not_found",
        )
    check_problem(
        api.client.post(team, json={"handle": "zhang_wei", "role": "boss"}, headers=wang),
        422,
        "validation_failed",
    )
    listed = api.client.get(team, headers=zhang).json()
    assert [(m["handle"], m["role"]) for m in listed] == [
        ("wang_wei", "owner"),
        ("zhang_wei", "viewer"),
    ]
    # A viewer sees the team but does not manage it.
    check_problem(
        api.client.put(f"{team}/{zhang_id}", json={"role": "owner"}, headers=zhang),
        403,
        "merchant_permission_denied",
    )
    # The only owner cannot step down or leave; with a second owner, they can.
    check_problem(
        api.client.put(f"{team}/{wang_id}", json={"role": "viewer"}, headers=wang),
        409,
        "merchant_owner_required",
    )
    check_problem(
        api.client.delete(f"{team}/{wang_id}", headers=wang), 409, "merchant_owner_required"
    )
    promoted = api.client.put(f"{team}/{zhang_id}", json={"role": "owner"}, headers=wang)
    assert promoted.status_code == 200 and promoted.json()["role"] == "owner"
    assert api.client.delete(f"{team}/{wang_id}", headers=zhang).status_code == 204
    check_problem(
        api.client.get(f"/v1/merchants/{shop['id']}", headers=wang), 404, "merchant_not_found"
    )
    check_problem(
        api.client.delete(f"{team}/{wang_id}", headers=zhang), 404, "merchant_member_not_found"
    )
    kinds = api.database.run(lambda s: s.scalars(select(AuditEvent.kind)).all(), write=False)
    assert kinds.count("merchant_member_added") == 1
    assert kinds.count("merchant_member_role_changed") == 1
    assert kinds.count("merchant_member_removed") == 1


def test_a_merchant_asks_for_a_payment_once_per_idempotency_key(
    api: Api, wang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    secret = make_key(api, wang, shop["id"])["secret"]
    made = server_post(api, secret, PAYMENT)
    assert made.status_code == 201, made.text
    payment = made.json()
    assert payment["reference"].startswith("pay_") and payment["status"] == "requires_approval"
    assert payment["amount"] == {"value": "32.00", "currency": "CNY"}
    assert payment["mode"] == "test" and payment["capture_method"] == "manual"
    assert payment["order_reference"] == "ORDER-1042" and payment["metadata"] == {"table": "7"}
    assert "Idempotent-Replayed" not in made.headers

    again = server_post(api, secret, PAYMENT)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == payment
    other = server_post(api, secret, {**PAYMENT, "amount": {"value": "33.00", "currency": "CNY"}})
    check_problem(other, 422, "idempotency_key_reused")
    check_problem(server_post(api, secret, PAYMENT, key=None), 400, "idempotency_key_missing")
    assert rows(api, MerchantPayment) == 1

    read = api.client.get(f"/v1/merchant/payments/{payment['reference']}", headers=as_key(secret))
    assert read.status_code == 200 and read.json() == payment


def test_a_payment_is_seen_only_by_its_merchant_in_its_mode_and_needs_its_scope(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    test_key = make_key(api, wang, shop["id"])["secret"]
    live_key = make_key(api, wang, shop["id"], mode="live")["secret"]
    read_only = make_key(api, wang, shop["id"], scopes=["read"])["secret"]
    refunds_only = make_key(api, wang, shop["id"], scopes=["refunds"])["secret"]
    other_key = make_key(api, zhang, open_shop(api, zhang)["id"])["secret"]
    reference = server_post(api, test_key, PAYMENT).json()["reference"]
    path = f"/v1/merchant/payments/{reference}"

    assert api.client.get(path, headers=as_key(read_only)).status_code == 200
    for stranger in (live_key, other_key):
        check_problem(api.client.get(path, headers=as_key(stranger)), 404, "payment_not_found")
    check_problem(api.client.get(path, headers=as_key(refunds_only)), 403, "api_key_scope_missing")
    check_problem(server_post(api, read_only, PAYMENT, key="k2"), 403, "api_key_scope_missing")
    check_problem(api.client.get(path, headers=wang), 401, "api_key_invalid")
    check_problem(
        api.client.get(path + "X" * 40, headers=as_key(test_key)), 422, "validation_failed"
    )
    # The same idempotency key in the other mode, or at another merchant, is another payment.
    assert server_post(api, live_key, PAYMENT).json()["reference"] != reference
    assert server_post(api, other_key, PAYMENT).json()["reference"] != reference
    assert rows(api, MerchantPayment) == 3


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"amount": {"value": "0", "currency": "CNY"}}, 422, "amount_not_positive"),
        ({"amount": {"value": "1.001", "currency": "CNY"}}, 422, "amount_scale_exceeded"),
        ({"amount": {"value": "9" * 30, "currency": "CNY"}}, 422, "amount_out_of_range"),
        ({"amount": {"value": 32, "currency": "CNY"}}, 422, "validation_failed"),
        ({"amount": {"value": "1", "currency": "XYZ"}}, 422, "asset_unknown"),
        ({"description": "  "}, 422, "merchant_name_invalid"),
        ({"description": "x" * 201}, 422, "merchant_name_invalid"),
        ({"order_reference": "ORD\u202e1"}, 422, "merchant_name_invalid"),
        ({"metadata": {f"k{i}": "v" for i in range(21)}}, 422, "payment_metadata_invalid"),
        ({"metadata": {"bad key": "v"}}, 422, "payment_metadata_invalid"),
        ({"metadata": {"k": "v" * 501}}, 422, "payment_metadata_invalid"),
        ({"metadata": {"k": 1}}, 422, "validation_failed"),
        ({"capture_method": "later"}, 422, "validation_failed"),
        ({"approve_within_seconds": 10}, 422, "validation_failed"),
        ({"approve_within_seconds": 2**70}, 422, "validation_failed"),
        ({"status": "captured"}, 422, "validation_failed"),
    ],
)
def test_a_bad_payment_request_is_refused_and_writes_nothing(
    api: Api, wang: dict[str, str], changes: dict[str, Any], status: int, code: str
) -> None:
    shop = open_shop(api, wang)
    secret = make_key(api, wang, shop["id"])["secret"]
    check_problem(server_post(api, secret, {**PAYMENT, **changes}), status, code)
    assert rows(api, MerchantPayment) == 0


def test_a_merchant_lists_its_payments_in_its_mode_page_by_page(
    api: Api, wang: dict[str, str]
) -> None:
    shop = open_shop(api, wang)
    test_key = make_key(api, wang, shop["id"])["secret"]
    live_key = make_key(api, wang, shop["id"], mode="live")["secret"]
    refunds_only = make_key(api, wang, shop["id"], scopes=["refunds"])["secret"]
    made = [server_post(api, test_key, PAYMENT, key=f"p{i}").json()["reference"] for i in range(3)]
    first = api.client.get("/v1/merchant/payments?limit=2", headers=as_key(test_key)).json()
    assert [p["reference"] for p in first["items"]] == [made[2], made[1]]
    rest = api.client.get(
        f"/v1/merchant/payments?limit=2&cursor={first['next_cursor']}", headers=as_key(test_key)
    ).json()
    assert [p["reference"] for p in rest["items"]] == [made[0]] and rest["next_cursor"] is None
    assert api.client.get("/v1/merchant/payments", headers=as_key(live_key)).json()["items"] == []
    found = api.client.get(
        "/v1/merchant/payments?status=requires_approval&order_reference=ORDER-1042",
        headers=as_key(test_key),
    ).json()
    assert len(found["items"]) == 3
    check_problem(
        api.client.get("/v1/merchant/payments", headers=as_key(refunds_only)),
        403,
        "api_key_scope_missing",
    )
    for query in ("limit=0", "limit=101", "cursor=0", "cursor=x", "status=paid", f"cursor={2**63}"):
        check_problem(
            api.client.get(f"/v1/merchant/payments?{query}", headers=as_key(test_key)),
            422,
            "validation_failed",
        )
