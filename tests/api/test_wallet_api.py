"""The wallet API as a client uses it: each operation, each failure reason, and who may see what.

After every test the ledger check runs (the ``api`` fixture). Refusals are
problem+json with a stable code and a next step, and leave nothing written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api_support import Api, send_body
from factories import make_settings
from purse.app import create_app
from purse.db import Database
from purse.funding.provider import AnswerStatus, Event
from purse.identity.models import User
from purse.ledger.models import Account
from purse.models import utc_now
from purse.wallet import conversion
from purse.wallet.models import FxQuote
from wallet_support import counts, make_user


def test_top_up_then_send_with_masked_name_check(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    topped = api.top_up(wang, "500.00")
    assert topped["status"] == "completed" and topped["direction"] == "in"
    assert [step["event"] for step in topped["timeline"]] == ["created", "submitted", "posted"]
    assert topped["funding_source"]["last4"] == "4242"

    preview = api.client.get("/v1/wallet/recipients?to=zhang.wei@example.com", headers=wang)
    assert preview.json() == {"handle": "zhang_wei", "masked_name": "Z*** W***"}

    sent = api.post("/v1/wallet/transfers", wang, send_body(), key="dinner-1")
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["amount"] == {"value": "25.50", "currency": "CNY"}
    assert body["counterparty"] == {"handle": "zhang_wei", "masked_name": "Z*** W***"}
    assert body["initiator"]["kind"] == "user_session"
    assert body["initiator"]["authenticated_by"] == "access_token+password"
    assert "Idempotent-Replayed" not in sent.headers

    again = api.post("/v1/wallet/transfers", wang, send_body(), key="dinner-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["reference"] == body["reference"]
    other = api.post("/v1/wallet/transfers", wang, send_body(value="25.51"), key="dinner-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"

    assert api.balance(wang)["balance"]["value"] == "474.50"
    assert api.balance(zhang)["available"]["value"] == "25.50"
    # The recipient sees the money coming in, and nothing of the sender's device.
    received = api.client.get(f"/v1/wallet/operations/{body['reference']}", headers=zhang).json()
    assert received["direction"] == "in" and received["initiator"] is None
    assert received["counterparty"]["handle"] == "wang_wei"
    assert received["funding_source"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (send_body(value="1000.00"), 409, "insufficient_funds"),
        (send_body(to="nobody_here"), 404, "recipient_not_found"),
        (send_body(to="wang_wei"), 422, "recipient_is_self"),
        (send_body(value="12.345"), 422, "amount_scale_exceeded"),
        (send_body(value="0"), 422, "amount_not_positive"),
        (send_body(value="twelve"), 422, "amount_invalid"),
        (send_body(value="99999999999999999999"), 422, "amount_out_of_range"),
        (send_body(amount={"value": "1", "currency": "XYZ"}), 422, "asset_unknown"),
        (send_body(amount={"value": "1", "currency": "GBP"}), 422, "asset_not_offered"),
        (send_body(note="n" * 141), 422, "note_too_long"),
        (send_body(value="20000.01"), 409, "limit_exceeded"),
        ({**send_body(), "balance": "1000"}, 422, "validation_failed"),
    ],
)
def test_each_refused_send_is_a_problem_and_changes_nothing(
    api: Api,
    wang: dict[str, str],
    zhang: dict[str, str],
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    api.top_up(wang, "100.00")
    before = counts(api.database)
    response = api.post("/v1/wallet/transfers", wang, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    if code not in {"validation_failed", "amount_out_of_range", "asset_unknown"}:
        assert problem["next_step"], code
    assert counts(api.database) == before
    assert api.balance(wang)["balance"]["value"] == "100.00"


def test_problems_speak_chinese_and_say_whether_to_retry(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    response = api.client.post(
        "/v1/wallet/transfers",
        json=send_body(value="5"),
        headers={**wang, "Idempotency-Key": "k", "Accept-Language": "zh-CN"},
    )
    problem = response.json()
    assert problem["code"] == "insufficient_funds" and problem["retryable"] is True
    assert (
        problem["detail"] == "账户余额不足。" and problem["next_step"] == "请先充值，或减少金额。"
    )


@pytest.mark.parametrize(
    ("language", "title", "period_display", "limit_display", "remaining_display", "detail"),
    [
        (
            "en",
            "Limit exceeded",
            "per-transfer",
            "CN¥20,000.00",
            "CN¥20,000.00",
            "This would go over your per-transfer limit of CN¥20,000.00; CN¥20,000.00 is left.",
        ),
        (
            "zh-CN",
            "超出限额",
            "单笔",
            "¥20,000.00",
            "¥20,000.00",
            "超出了您的单笔限额 ¥20,000.00，剩余可用 ¥20,000.00。",
        ),
    ],
)
def test_a_limit_comes_as_money_with_its_display_text_beside_it(
    api: Api,
    wang: dict[str, str],
    zhang: dict[str, str],
    language: str,
    title: str,
    period_display: str,
    limit_display: str,
    remaining_display: str,
    detail: str,
) -> None:
    """Programs read the amounts as {"value", "currency"} and the period as a code;
    people read the text."""
    api.top_up(wang, "100.00")
    response = api.post(
        "/v1/wallet/transfers",
        {**wang, "Accept-Language": language},
        send_body(value="20000.01"),
    )
    problem = response.json()
    assert response.status_code == 409 and problem["code"] == "limit_exceeded"
    assert problem["title"] == title
    assert problem["limit"] == {"value": "20000.00", "currency": "CNY"}
    assert problem["remaining"] == {"value": "20000.00", "currency": "CNY"}
    assert problem["limit_display"] == limit_display
    assert problem["remaining_display"] == remaining_display
    assert problem["detail"] == detail
    assert problem["period"] == "per_transfer"
    assert problem["period_display"] == period_display


def test_money_posts_need_an_idempotency_key(api: Api, wang: dict[str, str]) -> None:
    before = counts(api.database)
    for path, body in [
        ("/v1/wallet/transfers", send_body()),
        (
            "/v1/wallet/top-ups",
            {"funding_source_id": 1, "amount": {"value": "1", "currency": "CNY"}},
        ),
        (
            "/v1/wallet/withdrawals",
            {"funding_source_id": 1, "amount": {"value": "1", "currency": "CNY"}},
        ),
        ("/v1/wallet/conversions", {"quote_id": "q_x"}),
        ("/v1/wallet/requests/1/pay", None),
    ]:
        response = api.post(path, wang, body, key=None)
        assert response.status_code == 400 and response.json()["code"] == "idempotency_key_missing"
        bad = api.post(path, wang, body, key="x" * 256)
        assert bad.status_code == 422 and bad.json()["code"] == "idempotency_key_invalid", path
    assert counts(api.database) == before


def test_a_frozen_wallet_cannot_send(api: Api, wang: dict[str, str], zhang: dict[str, str]) -> None:
    api.top_up(wang, "50.00")
    api.database.run(
        lambda s: s.execute(
            update(Account)
            .where(Account.owner_id == "1", Account.kind == "wallet")
            .values(status="frozen")
        )
    )
    response = api.post("/v1/wallet/transfers", wang, send_body())
    assert response.status_code == 409 and response.json()["code"] == "account_frozen"
    assert "support" in response.json()["next_step"]


def test_withdrawal_that_the_bank_declines_releases_the_hold(
    api: Api, wang: dict[str, str]
) -> None:
    api.top_up(wang, "300.00")
    declining = api.card(wang, "4000000000000002")
    response = api.post(
        "/v1/wallet/withdrawals",
        wang,
        {"funding_source_id": declining, "amount": {"value": "120.00", "currency": "CNY"}},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "failed" and body["direction"] == "out"
    assert body["failure"]["code"] == "bank_declined" and body["failure"]["retryable"] is False
    assert body["failure"]["next_step"].startswith("Nothing was taken.")
    assert [step["event"] for step in body["timeline"]] == ["created", "held", "voided", "failed"]
    balance = api.balance(wang)
    assert balance["available"]["value"] == balance["balance"]["value"] == "300.00"

    paying = api.card(wang)
    held = api.post(
        "/v1/wallet/withdrawals",
        wang,
        {"funding_source_id": paying, "amount": {"value": "100.00", "currency": "CNY"}},
    ).json()
    assert held["status"] == "pending" and held["hold_expires_at"]
    assert api.balance(wang)["held"]["value"] == "100.00"
    pending = api.client.get("/v1/wallet/activity?status=pending", headers=wang).json()
    assert [item["reference"] for item in pending["items"]] == [held["reference"]]
    api.wallet.simulator.settle_due()
    assert api.balance(wang)["balance"]["value"] == "200.00"


def test_provider_callbacks_are_verified_and_applied_once(api: Api, wang: dict[str, str]) -> None:
    source = api.card(wang)
    started = api.post(
        "/v1/wallet/top-ups",
        wang,
        {"funding_source_id": source, "amount": {"value": "80.00", "currency": "CNY"}},
    ).json()
    simulator = api.wallet.simulator
    event = Event(
        event_id="evt_1",
        reference=started["reference"],
        provider_reference="simpay_x",
        status=AnswerStatus.succeeded,
    )
    headers, body = simulator.sign(event)
    url = "/v1/funding/providers/simulator/events"
    first = api.client.post(url, content=body, headers=headers)
    assert first.status_code == 200 and first.json() == {"status": "applied"}
    second = api.client.post(url, content=body, headers=headers)
    assert second.json() == {"status": "duplicate"}
    assert api.balance(wang)["balance"]["value"] == "80.00"

    tampered = body.replace(b"succeeded", b"declined")
    assert api.client.post(url, content=tampered, headers=headers).json()["code"] == (
        "provider_event_invalid"
    )
    old_headers, old_body = simulator.sign(event, timestamp=int(utc_now().timestamp()) - 600)
    assert api.client.post(url, content=old_body, headers=old_headers).status_code == 400
    assert api.client.post(url.replace("simulator", "acme"), content=body).status_code == 404


def test_nobody_reads_or_moves_what_is_not_theirs(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    topped = api.top_up(wang, "60.00")
    wang_card = topped["funding_source"]["id"]
    for path in (f"/v1/wallet/operations/{topped['reference']}",):
        missing = api.client.get(path, headers=zhang)
        assert missing.status_code == 404 and missing.json()["code"] == "operation_not_found"
        assert api.client.get(path).status_code == 401
    stolen = api.post(
        "/v1/wallet/withdrawals",
        zhang,
        {"funding_source_id": wang_card, "amount": {"value": "1.00", "currency": "CNY"}},
    )
    assert stolen.status_code == 404 and stolen.json()["code"] == "funding_source_not_found"
    assert (
        api.client.delete(f"/v1/wallet/funding-sources/{wang_card}", headers=zhang).status_code
        == 404
    )
    assert api.client.get("/v1/wallet/funding-sources", headers=zhang).json() == []
    assert api.client.get("/v1/wallet/balances").status_code == 401
    assert api.client.get("/v1/wallet/activity", headers=zhang).json()["items"] == []


def test_activity_pages_filters_and_search(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    api.top_up(wang, "500.00")
    for note in ("coffee", "books", "coffee beans"):
        assert (
            api.post("/v1/wallet/transfers", wang, send_body(note=note, value="1.00")).status_code
            == 201
        )
    first = api.client.get("/v1/wallet/activity?limit=2", headers=wang).json()
    assert [item["note"] for item in first["items"]] == ["coffee beans", "books"]
    second = api.client.get(
        f"/v1/wallet/activity?limit=2&cursor={first['next_cursor']}", headers=wang
    ).json()
    assert [item["kind"] for item in second["items"]] == ["send", "top_up"]
    assert second["next_cursor"] is None

    def search(query: str, auth: dict[str, str] = wang) -> list[str | None]:
        found = api.client.get(f"/v1/wallet/activity?{query}", headers=auth).json()
        return [item["note"] for item in found["items"]]

    assert search("q=coffee") == ["coffee beans", "coffee"]
    assert search("q=Zhang") == ["coffee beans", "books", "coffee"]
    assert search("q=%25") == []  # a wildcard is searched for, not obeyed
    assert search("direction=in") == [None]
    assert search("direction=in", zhang) == ["coffee beans", "books", "coffee"]
    assert search("kind=top_up&status=completed") == [None]
    assert search("counterparty=zhang_wei") == ["coffee beans", "books", "coffee"]
    today = utc_now().date()
    assert (
        len(search(f"date_from={today - timedelta(days=1)}&date_to={today + timedelta(days=1)}"))
        == 4
    )
    assert search(f"date_to={today - timedelta(days=2)}") == []
    bad = api.client.get("/v1/wallet/activity?cursor=abc", headers=wang)
    assert bad.status_code == 422 and bad.json()["code"] == "cursor_invalid"
    assert api.client.get("/v1/wallet/activity?limit=1000", headers=wang).status_code == 422


def test_convert_with_a_quote_and_refuse_an_expired_one(api: Api, wang: dict[str, str]) -> None:
    api.top_up(wang, "1000.00")
    api.database.run(
        lambda s: conversion.set_rate(
            s, base_asset="USD", quote_asset="CNY", rate="7.25", updated_by="t"
        )
    )
    quote = api.client.post(
        "/v1/wallet/quotes",
        json={
            "from_currency": "CNY",
            "to_currency": "USD",
            "amount": {"value": "725.00", "currency": "CNY"},
        },
        headers=wang,
    )
    assert quote.status_code == 201, quote.text
    priced = quote.json()
    assert priced["buy"] == {"value": "99.50", "currency": "USD"}
    assert priced["spread"] == {"value": "0.50", "currency": "USD"}
    converted = api.post("/v1/wallet/conversions", wang, {"quote_id": priced["id"]})
    assert converted.status_code == 201, converted.text
    assert converted.json()["converted"] == {"value": "99.50", "currency": "USD"}
    assert converted.json()["direction"] == "exchange"
    assert api.balance(wang, "USD")["balance"]["value"] == "99.50"
    assert api.balance(wang, "CNY")["balance"]["value"] == "275.00"

    stale = api.client.post(
        "/v1/wallet/quotes",
        json={
            "from_currency": "CNY",
            "to_currency": "USD",
            "amount": {"value": "10", "currency": "CNY"},
        },
        headers=wang,
    ).json()
    api.database.run(
        lambda s: s.execute(
            update(FxQuote)
            .where(FxQuote.id == stale["id"])
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )
    )
    before = counts(api.database)
    expired = api.post("/v1/wallet/conversions", wang, {"quote_id": stale["id"]})
    assert expired.status_code == 409 and expired.json()["code"] == "quote_expired"
    assert counts(api.database) == before
    mismatch = api.client.post(
        "/v1/wallet/quotes",
        json={
            "from_currency": "CNY",
            "to_currency": "USD",
            "amount": {"value": "10", "currency": "USD"},
        },
        headers=wang,
    )
    assert mismatch.status_code == 422


def test_money_requests_over_the_api(api: Api, wang: dict[str, str], zhang: dict[str, str]) -> None:
    api.top_up(wang, "100.00")
    asked = api.client.post(
        "/v1/wallet/requests",
        json={
            "payer": "+86 138 0013 8000",
            "amount": {"value": "30.00", "currency": "CNY"},
            "note": "tickets",
        },
        headers=zhang,
    )
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["direction"] == "outgoing" and request["other"]["masked_name"] == "W*** W***"
    incoming = api.client.get("/v1/wallet/requests", headers=wang).json()
    assert incoming[0]["direction"] == "incoming" and incoming[0]["status"] == "open"
    paid = api.post(f"/v1/wallet/requests/{request['id']}/pay", wang, None)
    assert paid.status_code == 201 and paid.json()["note"] == "tickets"
    assert api.balance(zhang)["balance"]["value"] == "30.00"
    assert api.client.get("/v1/wallet/requests", headers=zhang).json()[0]["status"] == "paid"
    again = api.client.post(f"/v1/wallet/requests/{request['id']}/decline", headers=wang)
    assert again.status_code == 409 and again.json()["code"] == "money_request_not_open"
    assert api.client.post("/v1/wallet/requests/999/cancel", headers=zhang).status_code == 404


def test_adding_a_card_needs_a_recent_sign_in(database_url: str) -> None:
    database = Database(make_settings(database_url, step_up_max_age_seconds=0))
    try:
        with TestClient(create_app(database.settings, database=database)) as client:
            api = Api(client=client, database=database)
            auth = api.user("wang_wei", "Wang Wei")
            response = client.post(
                "/v1/wallet/funding-sources",
                json={
                    "kind": "bank_account",
                    "bank_name": "ICBC",
                    "account_number": "6222020200112233",
                    "holder_name": "W",
                },
                headers=auth,
            )
            assert response.status_code == 403 and response.json()["code"] == "step_up_required"
            assert client.get("/v1/wallet/funding-sources", headers=auth).json() == []
    finally:
        database.dispose()


def test_card_numbers_are_never_echoed_or_stored(api: Api, wang: dict[str, str]) -> None:
    response = api.client.post(
        "/v1/wallet/funding-sources",
        json={
            "kind": "card",
            "number": "4242424242424241",
            "expiry_month": 1,
            "expiry_year": 2099,
            "holder_name": "W",
        },
        headers=wang,
    )
    assert response.status_code == 422 and response.json()["code"] == "card_number_invalid"
    assert "4242424242424241" not in response.text
    invalid = api.client.post(
        "/v1/wallet/funding-sources",
        json={
            "kind": "card",
            "number": "4242424242424242",
            "expiry_month": 13,
            "expiry_year": 2099,
            "holder_name": "W",
        },
        headers=wang,
    )
    assert invalid.status_code == 422 and "4242424242424242" not in invalid.text


def test_receive_link_qr_spending_and_the_failure_catalogue(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    receive = api.client.get("/v1/wallet/receive", headers=zhang).json()
    assert receive["link"].endswith("/pay/zhang_wei")
    qr = api.client.get(receive["qr_svg"], headers=zhang)
    assert qr.headers["content-type"] == "image/svg+xml" and qr.text.startswith("<?xml")

    api.top_up(wang, "100.00")
    api.post("/v1/wallet/transfers", wang, send_body(value="12.00"))
    spent = api.client.get("/v1/wallet/spending?currency=CNY", headers=wang).json()
    assert (
        spent["months"][-1]["spent"] == {"value": "12.00", "currency": "CNY"}
        and len(spent["months"]) == 6
    )
    assert spent["counterparties"][0]["counterparty"]["handle"] == "zhang_wei"

    reasons = api.client.get(
        "/v1/wallet/failure-reasons", headers={"Accept-Language": "zh-CN"}
    ).json()
    by_code = {reason["code"]: reason for reason in reasons}
    assert by_code["provider_timeout"]["retryable"] is True
    assert by_code["recipient_not_found"]["next_step"] == "请向收款人核对手机号、邮箱或用户名。"
    assert {"insufficient_funds", "limit_exceeded", "quote_expired", "account_frozen"} <= set(
        by_code
    )


@pytest.mark.parametrize(
    ("language", "limit", "scale"),
    [
        (
            "en",
            {
                "title": "Limit exceeded",
                "message": "This would go over your ‹period› limit of ‹limit›; "
                "‹remaining› is left.",
            },
            "Round the amount to ‹scale› decimal places.",
        ),
        (
            "zh-CN",
            {
                "title": "超出限额",
                "message": "超出了您的‹period›限额 ‹limit›，剩余可用 ‹remaining›。",
            },
            "请把金额保留到小数点后 ‹scale› 位。",
        ),
    ],
)
def test_the_failure_catalogue_names_the_fields_instead_of_placeholders(
    api: Api, language: str, limit: dict[str, str], scale: str
) -> None:
    """A client developer reads every reason before it happens: a fixed title, and the
    message with each piece of data named by the problem field that carries it."""
    reasons = api.client.get(
        "/v1/wallet/failure-reasons", headers={"Accept-Language": language}
    ).json()
    by_code = {reason["code"]: reason for reason in reasons}
    for reason in reasons:
        for text in (reason["title"], reason["message"], reason["next_step"] or ""):
            assert "{" not in text and "}" not in text, (reason["code"], text)
        assert reason["title"] and reason["title"] != reason["message"]
    assert {key: by_code["limit_exceeded"][key] for key in ("title", "message")} == limit
    assert by_code["limit_exceeded"]["fields"] == ["limit", "period", "remaining"]
    assert by_code["amount_scale_exceeded"]["next_step"] == scale
    assert by_code["recipient_not_found"]["fields"] == ["recipient"]
    assert by_code["insufficient_funds"]["fields"] == []


def test_statements_are_prepared_by_the_worker_and_downloaded(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    from purse.wallet import statements

    api.top_up(wang, "100.00")
    api.post("/v1/wallet/transfers", wang, send_body(value="12.00", note="=cmd|' /C calc'!A0"))
    month = utc_now().strftime("%Y-%m")
    asked = api.client.post(
        "/v1/wallet/statements", json={"month": month, "format": "csv"}, headers=wang
    )
    assert asked.status_code == 202 and asked.json()["status"] == "queued"
    statement_id = asked.json()["id"]
    early = api.client.get(f"/v1/wallet/statements/{statement_id}/file", headers=wang)
    assert early.status_code == 409 and early.json()["code"] == "statement_not_ready"
    assert statements.build_statements(api.wallet) == 1
    ready = api.client.get(f"/v1/wallet/statements/{statement_id}", headers=wang).json()
    assert ready["status"] == "ready" and ready["lines_done"] == ready["lines_total"] == 2
    download = api.client.get(ready["file"], headers=wang)
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    text = download.content.decode("utf-8-sig")
    assert "88.00" in text and "'=cmd" in text  # a formula in a note is defused
    assert api.client.get(ready["file"], headers=zhang).status_code == 404
    assert [
        item["id"] for item in api.client.get("/v1/wallet/statements", headers=wang).json()
    ] == [statement_id]
    for body, code in [
        ({"month": "2999-01"}, "statement_month_invalid"),
        ({"month": "2026-1"}, "validation_failed"),
        ({"month": month, "format": "xls"}, "validation_failed"),
    ]:
        refused = api.client.post("/v1/wallet/statements", json=body, headers=wang)
        assert refused.status_code == 422 and refused.json()["code"] == code, body


def test_operators_read_every_balance_at_one_moment(api: Api, wang: dict[str, str]) -> None:
    api.top_up(wang, "70.00")
    make_user(api.database, api.wallet.identity, handle="zhang_wei", display_name="Zhang Wei")
    api.database.run(
        lambda s: s.execute(update(User).where(User.handle == "zhang_wei").values(role="admin"))
    )
    admin = api.token("zhang_wei")
    found = api.client.get("/v1/admin/balances?currency=CNY", headers=admin)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["wallets_total"] == 1 and body["total"] == {"value": "70.00", "currency": "CNY"}
    assert body["wallets"][0]["handle"] == "wang_wei"
    refused = api.client.get("/v1/admin/balances", headers=wang)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    unknown = api.client.get("/v1/admin/balances?currency=XYZ", headers=admin)
    assert unknown.status_code == 422 and unknown.json()["code"] == "asset_unknown"
    too_many = api.client.get("/v1/admin/balances?limit=5000", headers=admin)
    assert too_many.status_code == 422 and too_many.json()["code"] == "validation_failed"
