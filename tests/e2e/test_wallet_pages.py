"""Wallet journeys in Chromium, in English and zh-CN, on the demo data with the workers running:
top-up, send by handle after checking the masked name, a double-clicked send that moves money
once, convert, a withdrawal the bank refuses (its hold released), and a statement download.
Screenshots of every page go to results/screenshots."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from support import LiveServer, screenshot

from purse.demo import DEMO_PASSWORD
from purse.identity.models import User
from purse.ledger import queries as ledger_queries
from purse.operations.accounts import account_id, user_owner
from purse.operations.models import Operation

SETTLE_TIMEOUT_MS = 20_000


def sign_in(page: Page, server: LiveServer, handle: str = "wang_wei") -> None:
    page.goto(f"{server.url}/home")  # not signed in: the sign-in page, then back here
    page.locator("#identifier").fill(handle)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/home$"))


def balance_minor(
    server: LiveServer, handle: str = "wang_wei", asset: str = "CNY"
) -> tuple[int, int]:
    """(balance, available) of a wallet, read from the ledger."""

    def read(session: object) -> tuple[int, int]:
        from sqlalchemy.orm import Session

        assert isinstance(session, Session)
        user_id = session.scalar(select(User.id).where(User.handle == handle))
        found = account_id(session, owner=user_owner(int(user_id or 0)), asset=asset, create=False)
        assert found is not None
        account = ledger_queries.get_account(session, account_id=found)
        return account.balance_minor, account.available_minor

    return server.database.run(read, write=False)


def test_home_and_top_up_until_the_bank_settles(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    sign_in(page, wallet_server)
    expect(page.locator(".balance").first).to_have_attribute("data-currency", "CNY")
    expect(page.locator(".chart svg rect")).to_have_count(6)
    screenshot(page, f"wallet-home-{locale}")
    before, _ = balance_minor(wallet_server)

    page.locator(".actions a[href='/top-up']").click()
    page.locator("#funding_source_id").select_option(label="Visa ••4242")
    page.locator("#amount").fill("100")
    screenshot(page, f"wallet-top-up-{locale}")
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/activity/PW[0-9A-Z]{10}\?started=1$"))
    screenshot(page, f"wallet-top-up-pending-{locale}")
    # The bank settles in the background; the page refreshes itself until it is final.
    expect(page.locator("#operation")).to_have_attribute(
        "data-status", "completed", timeout=SETTLE_TIMEOUT_MS
    )
    expect(page.locator(".timeline li[data-event='posted']")).to_have_count(1)
    screenshot(page, f"wallet-top-up-done-{locale}")
    assert balance_minor(wallet_server)[0] == before + 10_000


def test_send_by_handle_after_checking_the_masked_name(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    sign_in(page, wallet_server)
    before = balance_minor(wallet_server, "li_na")[0]
    page.goto(f"{wallet_server.url}/send")
    page.locator("#to").fill("li_na")
    expect(page.locator("#recipient [data-masked-name]")).to_have_attribute(
        "data-masked-name", "L*** N***"
    )
    page.locator("#amount").fill("12.50")
    page.locator("#note").fill("noodles")
    screenshot(page, f"wallet-send-{locale}")
    page.locator("button.primary").click()
    expect(page.locator(".who")).to_have_text("L*** N***")
    screenshot(page, f"wallet-send-confirm-{locale}")
    page.locator("#confirm-send").click()
    expect(page).to_have_url(re.compile(r"/activity/PW[0-9A-Z]{10}\?sent=1$"))
    expect(page.locator("#operation")).to_have_attribute("data-status", "completed")
    expect(page.locator(".notice")).to_be_visible()
    screenshot(page, f"wallet-send-receipt-{locale}")
    assert balance_minor(wallet_server, "li_na")[0] == before + 1_250

    page.locator("a[href$='/receipt']").click()
    expect(page.locator(".receipt .reference")).to_have_text(re.compile(r"^PW[0-9A-Z]{10}$"))
    screenshot(page, f"wallet-receipt-{locale}")

    # A wrong handle is caught before anything is sent, in the user's language.
    page.goto(f"{wallet_server.url}/send?to=li_naa&amount=5")
    expect(page.locator("#recipient [data-code]")).to_have_attribute(
        "data-code", "recipient_not_found"
    )
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "recipient_not_found")
    expect(page.locator(".error .next-step")).to_be_visible()
    screenshot(page, f"wallet-send-unknown-{locale}")


def test_a_double_clicked_send_moves_money_once(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    sign_in(page, wallet_server)
    before = balance_minor(wallet_server)[0]
    page.goto(f"{wallet_server.url}/send?to=lucky_coffee&amount=7.77&note=double")
    page.locator("button.primary").click()
    form = page.locator("form[action='/send/confirm']")
    fields: dict[str, str | float | bool] = {
        name: form.locator(f"input[name='{name}']").get_attribute("value") or ""
        for name in ("csrf_token", "idempotency_key", "to", "amount", "currency", "note")
    }
    page.locator("#confirm-send").dblclick()
    expect(page).to_have_url(re.compile(r"/activity/PW[0-9A-Z]{10}\?sent=1$"))
    reference = page.url.split("/activity/")[1].split("?")[0]
    # The browser's retry of the same form (same key) lands on the same receipt.
    again = page.request.post(f"{wallet_server.url}/send/confirm", form=fields, max_redirects=0)
    assert again.status == 303 and reference in again.headers["location"]
    sends = wallet_server.database.run(
        lambda s: s.scalar(
            select(func.count()).select_from(Operation).where(Operation.note == "double")
        ),
        write=False,
    )
    assert sends == 1
    assert balance_minor(wallet_server)[0] == before - 777


def test_convert_at_a_quoted_price(page: Page, wallet_server: LiveServer, locale: str) -> None:
    sign_in(page, wallet_server)
    usd_before = balance_minor(wallet_server, asset="USD")[0]
    page.goto(f"{wallet_server.url}/convert")
    page.locator("#amount").fill("721")
    page.locator("select[name='currency']").select_option("CNY")
    page.locator("#to_currency").select_option("USD")
    screenshot(page, f"wallet-convert-{locale}")
    page.locator("button.primary").click()
    expect(page.locator("#quote-buy")).to_contain_text("99.50")  # 721 / 7.21 less 0.5%
    expect(page.locator("[data-expires-at]")).not_to_have_text("")
    screenshot(page, f"wallet-convert-quote-{locale}")
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"\?converted=1$"))
    expect(page.locator("#operation")).to_have_attribute("data-status", "completed")
    screenshot(page, f"wallet-convert-done-{locale}")
    assert balance_minor(wallet_server, asset="USD")[0] == usd_before + 9_950


def test_a_withdrawal_the_bank_refuses_releases_the_hold(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    sign_in(page, wallet_server)
    before = balance_minor(wallet_server)
    page.goto(f"{wallet_server.url}/withdraw")
    page.locator("#funding_source_id").select_option(label="Visa ••0002")
    page.locator("#amount").fill("50")
    screenshot(page, f"wallet-withdraw-{locale}")
    page.locator("button.primary").click()
    expect(page.locator("#operation")).to_have_attribute("data-status", "failed")
    expect(page.locator("#operation .error")).to_have_attribute("data-code", "bank_declined")
    expect(page.locator(".timeline li[data-event='held']")).to_have_count(1)
    expect(page.locator(".timeline li[data-event='voided']")).to_have_count(1)
    screenshot(page, f"wallet-withdraw-declined-{locale}")
    assert balance_minor(wallet_server) == before  # nothing taken, nothing left reserved


def test_download_a_statement(page: Page, wallet_server: LiveServer, locale: str) -> None:
    sign_in(page, wallet_server)
    page.goto(f"{wallet_server.url}/statements")
    page.locator("#format").select_option("csv")
    screenshot(page, f"wallet-statements-{locale}")
    page.locator("button.primary").click()
    expect(page.locator("#statement-download")).to_be_visible(timeout=SETTLE_TIMEOUT_MS)
    screenshot(page, f"wallet-statement-ready-{locale}")
    with page.expect_download() as waiting:
        page.locator("#statement-download").click()
    download = waiting.value
    assert re.fullmatch(r"purse-statement-\d{4}-\d{2}\.csv", download.suggested_filename)
    content = download.path().read_text(encoding="utf-8-sig")
    assert "lucky_coffee" in content or "li_na" in content


def test_every_other_wallet_page_renders(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    sign_in(page, wallet_server)
    for path, name in [
        ("/activity", "activity"),
        ("/activity?direction=out&q=latte", "activity-filtered"),
        ("/request", "request"),
        ("/receive", "receive"),
        ("/funding-sources", "funding-sources"),
    ]:
        response = page.goto(f"{wallet_server.url}{path}")
        assert response is not None and response.status == 200, path
        screenshot(page, f"wallet-{name}-{locale}")
    expect(page.locator(".test-cards code")).to_have_count(7)
    page.goto(f"{wallet_server.url}/receive")
    assert page.locator(".qr img").evaluate("image => image.naturalWidth") > 100
    page.goto(f"{wallet_server.url}/activity?limit=5")
    expect(page.locator("#activity-rows .op")).to_have_count(5)
    page.locator("#load-more a").click()  # htmx appends the next page in place
    expect(page.locator("#activity-rows .op")).to_have_count(10)
    expect(page).to_have_url(re.compile(r"/activity\?limit=5$"))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{wallet_server.url}/home")
    screenshot(page, f"wallet-home-desktop-{locale}")


def test_a_large_send_asks_for_the_password_then_goes(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    """From the large-transfer amount on, a sign-in more than five minutes old is asked to
    confirm the password on the way; the same form then sends, once."""
    from datetime import timedelta

    from sqlalchemy import update

    from purse.identity.models import Session as SignInSession
    from purse.models import utc_now

    sign_in(page, wallet_server)
    long_ago = utc_now() - timedelta(minutes=20)
    wallet_server.database.run(
        lambda s: s.execute(
            update(SignInSession).values(created_at=long_ago, authenticated_at=long_ago)
        )
    )
    before = balance_minor(wallet_server, "li_na")[0]
    page.goto(f"{wallet_server.url}/send?to=li_na&amount=1,200&note=rent")
    page.locator("button.primary").click()
    screenshot(page, f"wallet-send-large-review-{locale}")
    page.locator("#confirm-send").click(timeout=5000)
    expect(page.locator("form[action='/send/confirm'] #password")).to_be_visible()
    screenshot(page, f"wallet-send-step-up-{locale}")
    page.locator("#password").fill("not the password")
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "invalid_credentials")
    assert balance_minor(wallet_server, "li_na")[0] == before  # nothing sent yet
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/activity/PW[0-9A-Z]{10}\?sent=1$"))
    expect(page.locator("#operation")).to_have_attribute("data-status", "completed")
    screenshot(page, f"wallet-send-step-up-done-{locale}")
    assert balance_minor(wallet_server, "li_na")[0] == before + 120_000
