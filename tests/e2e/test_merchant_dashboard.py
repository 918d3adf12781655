"""The merchant dashboard in Chromium, in English and zh-CN, on the demo data with workers.

Lucky Coffee's owner captures the payment a customer approved two days ago (citing what
was delivered) and refunds part of it; the webhook of the capture reaches the shop's
receiver on 127.0.0.1 and is sent again from the log with the same id; a key is made and
rolled. Screenshots go to results/screenshots.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select
from support import LiveServer, screenshot

from purse.assembly import assemble
from purse.audit.service import Actor
from purse.demo import DEMO_PASSWORD
from purse.identity.models import User
from purse.merchants import queries, webhooks
from purse.merchants.models import WEBHOOK_EVENT_TYPES
from webhook_receiver import receiver


def test_the_owner_captures_refunds_resends_and_rolls_a_key(
    page: Page, wallet_server: LiveServer, locale: str
) -> None:
    database = wallet_server.database
    purse = assemble(database.settings, database=database)
    shop_id = database.run(
        lambda s: (
            queries.memberships(
                s,
                user_id=s.scalar(select(User.id).where(User.handle == "lucky_coffee")) or 0,
            )[0].merchant.id
        ),
        write=False,
    )
    with receiver() as shop_server:
        _endpoint, shop_server.secret = database.run(
            lambda s: webhooks.create_endpoint(
                s,
                cipher=purse.identity.cipher,
                merchant_id=shop_id,
                mode="live",
                url=shop_server.url,
                event_types=[t for t in WEBHOOK_EVENT_TYPES if t.startswith("payment.")],
                description="orders",
                actor=Actor(kind="system", id="e2e"),
            )
        )
        page.goto(f"{wallet_server.url}/merchant")
        page.locator("#identifier").fill("lucky_coffee")
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("main button.primary").click()
        expect(page).to_have_url(re.compile(rf"/merchant/{shop_id}$"))
        screenshot(page, f"dashboard-payments-{locale}")

        held = page.locator("#payments li[data-status='authorized']")
        expect(held).to_have_count(1)
        held.locator("a").click()
        page.locator("#capture-amount").fill("50")
        page.locator("#fulfilment").fill("Cake handed over")
        page.locator("#capture").click()
        expect(page.locator("#payment")).to_have_attribute("data-status", "captured")
        expect(page.locator(".timeline li[data-event='captured']")).to_have_count(1)
        page.locator("#refund-amount").fill("8")
        page.locator("#reason").select_option("not_fulfilled")
        page.locator("#refund").click()
        expect(page.locator(".timeline li[data-event='refunded']")).to_have_count(1)
        screenshot(page, f"dashboard-payment-{locale}")

        page.goto(f"{wallet_server.url}/merchant/{shop_id}/webhooks")
        captured = page.locator("#deliveries li", has_text="payment.captured")
        for _ in range(40):  # the worker delivers within a second or two
            if captured.get_attribute("data-status") == "succeeded":
                break
            page.wait_for_timeout(250)
            page.reload()
        expect(captured).to_have_attribute("data-status", "succeeded")
        captured.locator("button[data-resend]").click()
        expect(page.locator(".notice")).to_be_visible()
        screenshot(page, f"dashboard-webhooks-{locale}")
        for _ in range(40):
            if any(r.duplicate for r in shop_server.received):
                break
            page.wait_for_timeout(250)
    resent = [r for r in shop_server.received if r.duplicate]
    assert resent and resent[0].headers["webhook-id"] in shop_server.handled_ids
    types = [event["type"] for event in shop_server.events]
    assert "payment.captured" in types and "payment.refunded" in types

    page.goto(f"{wallet_server.url}/merchant/{shop_id}/keys")
    page.locator("#key-name").fill("Checkout v2")
    page.locator("#make-key").click()
    secret = page.locator("code.secret")
    expect(secret).to_contain_text("sk_test_")
    made = secret.inner_text()
    page.goto(f"{wallet_server.url}/merchant/{shop_id}/keys")
    row = page.locator("#keys li", has_text="Checkout v2")
    row.locator("button[data-roll]").click()
    expect(page.locator("code.secret")).to_contain_text("sk_test_")
    assert page.locator("code.secret").inner_text() != made
    screenshot(page, f"dashboard-keys-{locale}")
