"""The hosted checkout in Chromium, in English and zh-CN, on the demo data with workers running.

A shop's server asks for a payment through the public API. On a computer, signed out, the
checkout shows the payment and a QR code; the customer opens the same link on a phone,
signs in and approves; the computer's page updates by itself. The shop captures part of
it and refunds some, and the customer's activity says who took what. A desktop customer
signed in approves on the page itself. Screenshots go to results/screenshots.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, ViewportSize, expect
from support import LiveServer, screenshot

from purse.assembly import assemble
from purse.audit.service import Actor
from purse.demo import DEMO_PASSWORD
from purse.identity.models import User
from purse.merchants import service
from purse.merchants.rules import KeyMode

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
ACTOR = Actor(kind="system", id="e2e")


def live_key(server: LiveServer) -> str:
    """Wang Wei's coffee shop and a live key for its server."""
    database = server.database
    purse = assemble(database.settings, database=database)

    def open_shop(session: Any) -> str:
        owner = session.query(User).filter(User.handle == "wang_wei").one().id
        shop = service.open_merchant(
            session, user_id=owner, name_en="Lotus Coffee", name_zh="莲花咖啡", actor=ACTOR
        ).merchant.id
        _key, secret = service.create_api_key(
            session,
            cipher=purse.identity.cipher,
            merchant_id=shop,
            user_id=owner,
            mode=KeyMode.live,
            name="checkout",
            scopes=["payments", "refunds", "read"],
            actor=ACTOR,
        )
        return secret

    return database.run(open_shop)


def shop_call(server: LiveServer, secret: str, path: str, body: Any = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": str(uuid.uuid4())}
    response = httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def ask(server: LiveServer, secret: str, value: str = "32.00") -> str:
    made = shop_call(
        server,
        secret,
        "/v1/merchant/payments",
        {
            "amount": {"value": value, "currency": "CNY"},
            "description": "2 flat whites",
            "order_reference": "ORDER-1042",
        },
    )
    return str(made["reference"])


def sign_in_here(page: Page, handle: str) -> None:
    """On the sign-in page the checkout sent us to: sign in, and come back."""
    page.locator("#identifier").fill(handle)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("main button.primary").click()


def test_scan_on_a_computer_approve_on_a_phone_then_capture_and_refund(
    browser: Browser, page: Page, wallet_server: LiveServer, locale: str
) -> None:
    secret = live_key(wallet_server)
    reference = ask(wallet_server, secret)
    link = f"{wallet_server.url}/checkout/{reference}"

    desktop = browser.new_context(locale=locale, viewport=DESKTOP)
    computer = desktop.new_page()
    computer.goto(link)
    expect(computer.locator("#checkout")).to_have_attribute("data-status", "requires_approval")
    expect(computer.locator(".scan img")).to_be_visible()
    expect(computer.locator(".merchant-name")).to_have_text(
        "莲花咖啡" if locale == "zh-CN" else "Lotus Coffee"
    )
    qr = httpx.get(f"{link}/qr.svg", timeout=30)
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml"
    screenshot(computer, f"checkout-desktop-scan-{locale}")

    # The phone (the page fixture, 390 px wide): no QR code there, the button to sign in.
    page.goto(link)
    expect(page.locator(".scan")).to_be_hidden()
    screenshot(page, f"checkout-phone-signed-out-{locale}")
    page.locator("#sign-in-to-pay").click()
    sign_in_here(page, "li_na")
    expect(page).to_have_url(re.compile(rf"/checkout/{reference}$"))
    expect(page.locator(".confirm-box")).to_be_visible()
    screenshot(page, f"checkout-phone-approve-{locale}")
    page.locator("#approve").click()
    expect(page.locator("#checkout")).to_have_attribute("data-status", "authorized")
    screenshot(page, f"checkout-phone-approved-{locale}")

    # The computer's page updates by itself, and shows nothing of the payment now.
    expect(computer.locator("#checkout")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(computer.locator(".big-amount")).to_have_count(0)
    screenshot(computer, f"checkout-desktop-done-{locale}")
    desktop.close()

    shop_call(
        wallet_server,
        secret,
        f"/v1/merchant/payments/{reference}/capture",
        {"amount": {"value": "30.00", "currency": "CNY"}, "fulfilment_reference": "Table 7"},
    )
    shop_call(
        wallet_server,
        secret,
        f"/v1/merchant/payments/{reference}/refunds",
        {"amount": {"value": "5.00", "currency": "CNY"}, "reason": "not_fulfilled"},
    )
    page.goto(f"{wallet_server.url}/activity")
    name = "莲花咖啡" if locale == "zh-CN" else "Lotus Coffee"
    rows = page.locator("li.op", has_text=name)
    expect(rows).to_have_count(2)  # the payment and its refund
    screenshot(page, f"checkout-activity-{locale}")
    rows.filter(has_text="30.00").click()
    expect(page.locator("#operation")).to_contain_text("ORDER-1042")
    expect(page.locator("#operation")).to_contain_text("Table 7")
    expect(page.locator(".big-amount")).to_contain_text("30.00")
    screenshot(page, f"checkout-payment-{locale}")


def test_a_signed_in_customer_approves_on_the_desktop_page(
    browser: Browser, wallet_server: LiveServer, locale: str
) -> None:
    secret = live_key(wallet_server)
    reference = ask(wallet_server, secret, value="12.00")
    context = browser.new_context(locale=locale, viewport=DESKTOP)
    computer = context.new_page()
    computer.goto(f"{wallet_server.url}/checkout/{reference}")
    computer.locator("#sign-in-to-pay").click()
    sign_in_here(computer, "wang_wei")
    computer.locator("#approve").click()
    expect(computer.locator("#checkout")).to_have_attribute("data-status", "authorized")
    expect(computer.locator(".scan")).to_have_count(0)
    screenshot(computer, f"checkout-desktop-approved-{locale}")
    context.close()


def test_the_demo_shop_sells_a_coffee_and_hears_every_webhook(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    """The newcomer's journey: buy at the demo shop, pay at checkout, watch the webhooks."""
    from purse.demo import pages as demo_pages

    purse = assemble(wallet_server.database.settings, database=wallet_server.database)
    app = wallet_server.server.config.app
    shop = demo_pages.mount(app, purse, base_url=wallet_server.url)  # type: ignore[arg-type]
    assert shop is not None and shop.key_secret.startswith("sk_test_")
    page.goto(f"{wallet_server.url}/demo/shop")
    screenshot(page, f"demo-shop-{locale}")
    page.locator("button[data-item='latte']").click()
    page.locator("#sign-in-to-pay").click()
    sign_in_here(page, "li_na")
    expect(page.locator(".test-mode")).to_be_visible()
    page.locator("#approve").click()
    expect(page.locator("#checkout")).to_have_attribute("data-status", "authorized")

    def heard(kind: str) -> None:
        for _ in range(40):  # the worker delivers within a second or two
            page.goto(f"{wallet_server.url}/demo/shop")
            if page.locator(f"#webhooks li[data-event='{kind}']").count():
                return
            page.wait_for_timeout(250)
        raise AssertionError(f"no {kind} webhook")

    heard("payment.authorized")
    page.locator("#orders form[action$='/capture'] button").click()
    heard("payment.captured")
    page.locator("#orders form[action$='/refund'] button").click()
    heard("payment.refunded")
    expect(page.locator("#orders li")).to_have_attribute("data-status", "captured")
    screenshot(page, f"demo-shop-webhooks-{locale}")
    assert len(shop.received) == 3 and len(shop.seen) == 3
