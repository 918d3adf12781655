"""What a new user tripped over, each fixed and held by a test (over HTTP, both databases).

Large transfers without a fresh confirmation, a decimal comma read as grouping,
NUL characters answered with 500 on PostgreSQL, money requests without limits,
unbounded integers in page paths, payers never told, browsers given raw JSON,
and an unthrottled recipient look-up.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api_support import Api, send_body
from factories import make_settings
from purse.app import create_app
from purse.db import Database
from purse.identity.models import Session as SignInSession
from purse.identity.models import User
from purse.models import utc_now
from purse.notify.models import OutboxMessage
from wallet_support import PASSWORD, counts

NUL = "\u0000"


def age_sessions(api: Api, handle: str, minutes: int) -> None:
    """Every session of ``handle`` signed in (and last confirmed) ``minutes`` ago."""
    then = utc_now() - timedelta(minutes=minutes)
    user_id = api.database.run(
        lambda s: s.scalars(select(User.id).where(User.handle == handle)).one(), write=False
    )
    api.database.run(
        lambda s: s.execute(
            update(SignInSession)
            .where(SignInSession.user_id == user_id)
            .values(created_at=then, authenticated_at=then)
        )
    )


def signed_in_pages(api: Api, handle: str, locale: str = "en") -> tuple[TestClient, str]:
    """The app's pages, signed in as ``handle`` through the sign-in form; and a CSRF token."""
    client = api.client
    client.cookies.clear()
    client.cookies.set("purse_locale", locale)
    client.get("/signin")
    token = str(client.cookies["purse_csrf"])
    done = client.post(
        "/signin",
        data={"identifier": handle, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return client, token


# 3. Large transfers need a fresh confirmation, in the API and on the pages -----------------


def test_a_large_send_needs_a_fresh_password_and_then_goes_once(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    api.top_up(wang, "5000.00")
    age_sessions(api, "wang_wei", minutes=10)  # signed in ten minutes ago
    before = counts(api.database)
    refused = api.post("/v1/wallet/transfers", wang, send_body(value="1500.00"), key="big-1")
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "step_up_required"
    assert refused.json()["action"] == "large_transfer"
    assert counts(api.database) == before  # nothing written
    small = api.post("/v1/wallet/transfers", wang, send_body(value="999.99"))
    assert small.status_code == 201, small.text  # under the large-transfer amount
    confirmed = api.client.post("/v1/auth/step-up", json={"password": PASSWORD}, headers=wang)
    assert confirmed.status_code == 200, confirmed.text
    sent = api.post("/v1/wallet/transfers", wang, send_body(value="1500.00"), key="big-1")
    assert sent.status_code == 201, sent.text
    assert sent.json()["initiator"]["authenticated_by"] == "access_token+password+step_up"
    again = api.post("/v1/wallet/transfers", wang, send_body(value="1500.00"), key="big-1")
    assert again.json()["reference"] == sent.json()["reference"]
    assert api.balance(wang)["balance"]["value"] == "2500.01"


def test_a_large_withdrawal_needs_a_fresh_password_too(api: Api, wang: dict[str, str]) -> None:
    api.top_up(wang, "3000.00")
    age_sessions(api, "wang_wei", minutes=10)
    source = api.client.get("/v1/wallet/funding-sources", headers=wang).json()[0]["id"]
    body = {"funding_source_id": source, "amount": {"value": "2000.00", "currency": "CNY"}}
    refused = api.post("/v1/wallet/withdrawals", wang, body)
    assert refused.status_code == 403 and refused.json()["code"] == "step_up_required"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_pages_ask_for_the_password_and_then_send_the_same_form(
    api: Api, wang: dict[str, str], zhang: dict[str, str], locale: str
) -> None:
    api.top_up(wang, "5000.00")
    client, token = signed_in_pages(api, "wang_wei", locale)
    age_sessions(api, "wang_wei", minutes=10)
    form = {
        "csrf_token": token,
        "to": "zhang_wei",
        "amount": "1,500.00",
        "currency": "CNY",
        "note": "rent",
        "idempotency_key": str(uuid.uuid4()),
    }
    asked = client.post("/send/confirm", data=form, follow_redirects=False)
    assert asked.status_code == 200 and 'action="/send/confirm"' in asked.text
    assert 'name="password"' in asked.text and 'value="1,500.00"' in asked.text
    assert api.balance(wang)["balance"]["value"] == "5000.00"  # nothing sent yet
    wrong = client.post("/send/confirm", data={**form, "password": "not-it"})
    assert wrong.status_code == 401 and 'name="password"' in wrong.text
    sent = client.post("/send/confirm", data={**form, "password": PASSWORD}, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"].startswith("/activity/PW")
    assert api.balance(wang)["balance"]["value"] == "3500.00"


# 4. Amounts typed in forms are read strictly, in both locales ---------------------------


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_decimal_comma_is_refused_not_read_as_grouping(
    api: Api, wang: dict[str, str], zhang: dict[str, str], locale: str
) -> None:
    api.top_up(wang, "500.00")
    client, token = signed_in_pages(api, "wang_wei", locale)
    base = {"csrf_token": token, "to": "zhang_wei", "currency": "CNY", "note": ""}
    before = counts(api.database)
    for typed in ("1,00", "1,5", "1.000,5", "1e2", "NaN"):
        for path in ("/send", "/send/confirm"):
            form = {**base, "amount": typed, "idempotency_key": str(uuid.uuid4())}
            refused = client.post(path, data=form, headers={"Accept": "text/html"})
            assert refused.status_code == 422, (typed, path)
            assert 'data-code="amount_invalid"' in refused.text, (typed, path)
    assert counts(api.database) == before and api.balance(wang)["balance"]["value"] == "500.00"
    # Grouping where the locale puts it is read as grouping.
    review = client.post("/send", data={**base, "amount": "1,000.50"})
    assert review.status_code == 200 and "1,000.50" in review.text
    sent = client.post(
        "/send/confirm",
        data={**base, "amount": "1.50", "idempotency_key": str(uuid.uuid4())},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert api.balance(wang)["balance"]["value"] == "498.50"


# 5. Control characters are refused with 422, never a 500, on both databases ----------------


def test_control_characters_are_refused_everywhere_and_change_nothing(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    api.top_up(wang, "100.00")
    before = counts(api.database)
    source = api.client.get("/v1/wallet/funding-sources", headers=wang).json()[0]["id"]
    attempts: list[Any] = [
        api.post("/v1/wallet/transfers", wang, send_body(note=f"din{NUL}ner")),
        api.post("/v1/wallet/transfers", wang, send_body(to=f"zhang{NUL}wei")),
        api.client.post(
            "/v1/wallet/transfers",
            content=b'{"to": "zhang_wei", "amount": {"value": "1", "currency": "CNY"}, '
            b'"note": "\\ud800"}',
            headers={**wang, "Content-Type": "application/json", "Idempotency-Key": "lone"},
        ),
        api.client.post(
            "/v1/wallet/requests",
            json={"payer": "zhang_wei", "amount": {"value": "1", "currency": "CNY"}, "note": NUL},
            headers=wang,
        ),
        api.client.post(
            "/v1/wallet/funding-sources",
            json={
                "kind": "bank_account",
                "bank_name": f"Bank{NUL}of China",
                "account_number": "6222020000001234",
                "holder_name": "Wang Wei",
            },
            headers=wang,
        ),
        api.post("/v1/wallet/conversions", wang, {"quote_id": f"q_{NUL}"}),
        api.post(
            "/v1/wallet/withdrawals",
            wang,
            {"funding_source_id": source, "amount": {"value": f"1{NUL}", "currency": "CNY"}},
        ),
        api.client.get("/v1/wallet/activity?q=a%00b", headers=wang),
        api.client.get("/v1/wallet/activity?counterparty=a%00", headers=wang),
        api.client.get("/v1/wallet/activity?currency=CN%00", headers=wang),
        api.client.get("/v1/wallet/operations/x%00y", headers=wang),
        api.client.get("/v1/wallet/recipients?to=%00", headers=wang),
    ]
    for response in attempts:
        assert response.status_code == 422, (response.request.url, response.text)
        body = response.json()
        assert body["code"] == "text_control_character", body
        assert body["retryable"] is False and body["location"] in ("path", "query", "body")
    assert counts(api.database) == before
    # Tabs and line breaks in a body are text, not control characters.
    ok = api.post("/v1/wallet/transfers", wang, send_body(note="line one\nline two\t!"))
    assert ok.status_code == 201 and ok.json()["note"] == "line one line two !"


def test_a_browser_sending_a_nul_gets_the_page_in_its_language(
    api: Api, wang: dict[str, str]
) -> None:
    client, token = signed_in_pages(api, "wang_wei", "zh-CN")
    response = client.post(
        "/send",
        data={"csrf_token": token, "to": f"a{NUL}b", "amount": "1", "currency": "CNY"},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert 'data-code="text_control_character"' in response.text
    assert "控制字符" in response.text


# 6. Money requests are held to what the payer could pay --------------------------------


def test_a_request_above_what_the_payer_can_send_is_refused(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    def ask(value: str) -> Any:
        body = {"payer": "zhang_wei", "amount": {"value": value, "currency": "CNY"}}
        return api.client.post(
            "/v1/wallet/requests", json=body, headers={**wang, "Accept-Language": "zh-CN"}
        )

    before = counts(api.database)
    huge = ask("92233720368547758.07")
    assert huge.status_code == 422 and huge.json()["code"] == "money_request_too_large"
    # zhang_wei is at KYC level 1: 20,000 CNY a transfer.
    over = ask("20000.01")
    assert over.status_code == 422, over.text
    assert over.json()["limit"] == {"value": "20000.00", "currency": "CNY"}
    assert "20,000.00" in over.json()["limit_display"]
    assert "20,000.00" in over.json()["detail"]
    assert ask("92233720368547758.08").json()["code"] == "amount_out_of_range"
    assert counts(api.database) == before
    assert ask("20000.00").status_code == 201


# 7. Page routes bound their integers --------------------------------------------------------


def test_page_paths_bound_their_integers(api: Api, wang: dict[str, str]) -> None:
    client, token = signed_in_pages(api, "wang_wei")
    html = {"Accept": "text/html"}
    for path in (
        "/statements/99999999999999999999",
        "/statements/99999999999999999999/download",
        "/statements/0",
        "/activity/" + "X" * 200,
    ):
        response = client.get(path, headers=html)
        assert response.status_code in (404, 422), (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
    for path in (
        "/requests/99999999999999999999/pay",
        "/requests/99999999999999999999/decline",
        "/funding-sources/99999999999999999999/remove",
    ):
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code == 422, (path, response.status_code)


def test_every_path_parameter_of_every_route_is_bounded(api: Api, wang: dict[str, str]) -> None:
    """No route answers 500 to a huge number, an overlong word or a NUL in its path."""
    from purse.routing import route_table

    client, token = signed_in_pages(api, "wang_wei")
    tried = 0
    for method, template in route_table(client.app):
        if "{" not in template or template.startswith("/static"):
            continue
        for value in ("99999999999999999999", "-1", "x" * 300, "x%00y"):
            path = re.sub(r"\{[^}]+\}", value, template)
            headers = {**wang, "Idempotency-Key": str(uuid.uuid4())}
            response = client.request(method, path, headers=headers, data={"csrf_token": token})
            tried += 1
            assert response.status_code < 500, (method, path, response.text[:200])
    assert tried > 40


# 9. Every debit tells its owner --------------------------------------------------------


def test_the_payer_is_told_of_every_send(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    api.top_up(wang, "100.00")
    sent = api.post("/v1/wallet/transfers", wang, send_body(value="12.00")).json()
    reference = sent["reference"]
    messages = api.database.run(
        lambda s: s.scalars(
            select(OutboxMessage.event_key).where(OutboxMessage.event_key.like(f"{reference}:%"))
        ).all(),
        write=False,
    )
    # The payer (phone) and the payee (email) are each told, once per channel.
    assert sorted({str(key) for key in messages}) == [
        f"{reference}:money_received",
        f"{reference}:money_sent",
    ]


# 10. A browser on an unknown route gets the error page in its language ----------------------


@pytest.mark.parametrize(("locale", "words"), [("en", "Nothing was found"), ("zh-CN", "没有找到")])
def test_an_unknown_page_is_an_html_page_in_the_browsers_language(
    api: Api, locale: str, words: str
) -> None:
    api.client.cookies.clear()
    page = api.client.get(
        "/no-such-page", headers={"Accept": "text/html", "Accept-Language": locale}
    )
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert words in page.text and 'data-code="not_found"' in page.text
    assert page.headers["content-language"] == locale
    json_client = api.client.get("/v1/no-such-thing", headers={"Accept": "text/html"})
    assert json_client.headers["content-type"] == "application/problem+json"


# 15. Recipient look-ups are throttled per user and per address -----------------------------


def test_recipient_look_ups_are_throttled(database_url: str) -> None:
    settings = make_settings(
        database_url,
        recipient_lookups_max=3,
        recipient_lookups_per_address_max=5,
        simulator_settle_seconds=0,
    )
    database = Database(settings)
    try:
        app = create_app(settings, database=database)
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:
            api = Api(client=client, database=database)
            wang = api.user("wang_wei", "Wang Wei")
            li = api.user("li_na", "Li Na")

            def look(auth: dict[str, str], to: str) -> Any:
                return client.get(f"/v1/wallet/recipients?to={to}", headers=auth)

            statuses = [look(wang, f"nobody{n}@example.com").status_code for n in range(3)]
            assert statuses == [404, 404, 404]  # a miss counts like a hit
            throttled = look(wang, "li_na")
            assert throttled.status_code == 429, throttled.text
            assert throttled.json()["code"] == "recipient_lookups_throttled"
            assert int(throttled.headers["retry-after"]) > 0
            # Another user from the same address has the address's bound left: two more.
            assert [look(li, "wang_wei").status_code for _ in range(3)] == [200, 200, 429]
            # Asking for money names the payer, so it is held to the same bound ...
            ask = {"payer": "li_na", "amount": {"value": "1", "currency": "CNY"}}
            refused = client.post("/v1/wallet/requests", json=ask, headers=wang)
            assert refused.status_code == 429
            # ... but a send is not: it names nobody until the money has moved.
            api.top_up(wang, "10.00")
            sent = api.post("/v1/wallet/transfers", wang, send_body(to="li_na", value="1"))
            assert sent.status_code == 201, sent.text
    finally:
        database.dispose()
