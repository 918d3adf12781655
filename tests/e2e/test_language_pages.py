"""What a reader of each language sees in Chromium: the security centre (devices and times in
the operator's time zone), a throttled sign-in (a count in the reader's grammar), an error
page with its title, and the notice for readers of Traditional Chinese."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update
from support import LiveServer, screenshot

from factories import make_settings
from purse import migrate
from purse.audit.service import Actor
from purse.db import Database
from purse.identity.context import Identity
from purse.identity.models import Session as SessionRow
from purse.identity.signup import create_verified_user

PASSWORD = "river-lamp-quiet-74"
TEXT = {
    "en": {
        "device": "Mobile Safari on iOS (iPhone)",
        "old_device": "Chrome on Android (Pixel 8)",
        "last_used": "1/16/25, 12:30\u202fAM",
        "wait": "Too many attempts. Wait 1 second and try again.",
        "title": "Form expired",
    },
    "zh-CN": {
        "device": "iOS 上的 Mobile Safari（iPhone）",
        "old_device": "Android 上的 Chrome（Pixel 8）",
        "last_used": "2025/1/16 00:30",
        "wait": "尝试次数过多。请等待 1 秒后再试。",
        "title": "表单已失效",
    },
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server in Shanghai time where the second wrong password in a row must wait."""
    database = Database(
        make_settings(
            f"sqlite:///{tmp_path}/languages.db",
            env="development",
            timezone="Asia/Shanghai",
            login_delay_after_failures=1,
        )
    )
    migrate.upgrade(database)
    database.run(
        lambda s: create_verified_user(
            s,
            identity=Identity(database.settings),
            handle="wang_wei",
            display_name="Wang Wei",
            password=PASSWORD,
            role="user",
            locale="zh-CN",
            actor=Actor(kind="operator", id="e2e"),
            email="wang.wei@example.com",
        )
    )
    with LiveServer(database) as running:
        yield running
    database.dispose()


def sign_in(page: Page, server: LiveServer, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/signin")
    page.locator("#identifier").fill("wang_wei")
    page.locator("#password").fill(password)
    page.locator("button.primary").click()


def test_security_centre_and_a_throttled_sign_in(
    page: Page, server: LiveServer, locale: str
) -> None:
    text = TEXT[locale]
    sign_in(page, server, "wrong-password-1")
    expect(page.locator(".error")).to_have_attribute("data-code", "invalid_credentials")
    sign_in(page, server, "wrong-password-2")
    expect(page.locator(".error")).to_have_attribute("data-code", "login_throttled")
    expect(page.locator(".error")).to_have_text(text["wait"])
    screenshot(page, f"languages-signin-throttled-{locale}")

    page.wait_for_timeout(1100)
    sign_in(page, server)
    expect(page).to_have_url(re.compile(r"/home$"))
    # A session signed in before devices were stored as names, seen at 16:30 UTC.
    server.database.run(
        lambda s: s.execute(
            update(SessionRow).values(
                device="Chrome on Android (Pixel 8)",
                last_seen_at=datetime(2025, 1, 15, 16, 30, tzinfo=UTC),
            )
        )
    )
    sign_in(page, server)
    page.goto(f"{server.url}/security")
    devices = page.locator(".session strong")
    expect(devices).to_have_text([text["device"], text["old_device"]])
    expect(page.locator(".session small").nth(1)).to_contain_text(text["last_used"])
    expect(page.locator("main")).not_to_contain_text("UTC")
    screenshot(page, f"languages-security-{locale}")


def test_an_error_page_in_each_language(page: Page, server: LiveServer, locale: str) -> None:
    page.goto(f"{server.url}/signin")
    page.context.clear_cookies()  # the form's CSRF cookie is gone: the post is refused
    page.locator("#identifier").fill("wang_wei")
    page.locator("#password").fill(PASSWORD)
    page.locator("button.primary").click()
    expect(page.locator("h1")).to_have_text(TEXT[locale]["title"])
    expect(page.locator(".error")).to_have_attribute("data-code", "csrf_failed")
    expect(page).to_have_title(f"{TEXT[locale]['title']} · purse")
    screenshot(page, f"languages-error-{locale}")


def test_traditional_chinese_readers_are_told_what_is_offered(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.new_context(locale="zh-TW", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{server.url}/signin")
    expect(page.locator("#locale-notice")).to_have_text("目前僅提供簡體中文與英文介面。")
    expect(page.locator("h1")).to_have_text("登录")
    screenshot(page, "languages-zh-TW-notice")
    context.close()
