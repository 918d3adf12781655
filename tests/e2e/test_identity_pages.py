"""Identity journeys in Chromium, in English and zh-CN: sign up and confirm, sign in with TOTP,
end another session. Screenshots of each page go to results/screenshots."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Browser, Page, expect
from support import LiveServer, screenshot

from purse.audit.service import Actor
from purse.identity import twofactor
from purse.identity.context import Identity
from purse.identity.signup import create_verified_user

PASSWORD = "river-lamp-quiet-74"
TEXT = {
    "en": {
        "sign_in": "Sign in",
        "security": "Security",
        "signed_in_here": "this device",
        "iphone": "Mobile Safari on iOS (iPhone)",
    },
    "zh-CN": {
        "sign_in": "登录",
        "security": "安全中心",
        "signed_in_here": "本设备",
        "iphone": "iOS 上的 Mobile Safari（iPhone）",
    },
}


def code_from_mailbox(
    page: Page, server: LiveServer, recipient: str, name: str | None = None
) -> str:
    """Read the newest code sent to ``recipient`` in another tab, as a user would."""
    mailbox = page.context.new_page()
    mailbox.goto(f"{server.url}/dev/mailbox")
    if name:
        screenshot(mailbox, name)
    message = mailbox.locator(f'li.message[data-recipient="{recipient}"]').first
    code = message.locator("code.code").inner_text().strip()
    mailbox.close()
    return code


def test_sign_up_confirm_and_sign_in(page: Page, live_server: LiveServer, locale: str) -> None:
    text = TEXT[locale]
    page.goto(f"{live_server.url}/signup")
    screenshot(page, f"signup-{locale}")
    page.get_by_label("Your name" if locale == "en" else "您的姓名").fill("Wang Wei")
    page.locator("#handle").fill("wang_wei")
    page.locator("#email").fill("wang.wei@example.com")
    page.locator("#password").fill("short")
    page.locator("#password").evaluate("element => element.removeAttribute('minlength')")
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "password_too_short")
    screenshot(page, f"signup-error-{locale}")
    page.locator("#password").fill(PASSWORD)
    page.locator("button.primary").click()
    expect(page.locator("h1")).to_have_text(
        "Confirm your contact" if locale == "en" else "确认您的联系方式"
    )
    screenshot(page, f"verify-{locale}")

    code = code_from_mailbox(page, live_server, "wang.wei@example.com", f"mailbox-{locale}")
    assert re.fullmatch(r"\d{6}", code)
    page.locator("#code").fill(code)
    page.locator("button.primary").click()
    expect(page.locator(".notice")).to_be_visible()

    page.locator("#password").fill(PASSWORD)
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    page.goto(f"{live_server.url}/security")
    expect(page.locator("h1")).to_have_text(text["security"])
    expect(page.locator(".badge")).to_have_text(text["signed_in_here"])
    expect(page.locator(".session strong")).to_have_text(text["iphone"])
    screenshot(page, f"security-{locale}")

    page.locator("form[action='/signout'] button").click()
    expect(page.locator("h1")).to_have_text(text["sign_in"])
    page.goto(f"{live_server.url}/security")
    expect(page.locator("h1")).to_have_text(text["sign_in"])  # the session ended on the server


def test_sign_in_with_totp(page: Page, live_server: LiveServer, locale: str) -> None:
    database = live_server.database
    identity = Identity(database.settings)
    actor = Actor(kind="operator", id="e2e")
    user_id = database.run(
        lambda s: create_verified_user(
            s,
            identity=identity,
            handle="li_na",
            display_name="Li Na",
            password=PASSWORD,
            role="user",
            locale=locale,
            actor=actor,
            email="li.na@example.com",
        )
    )
    secret = database.run(
        lambda s: twofactor.begin_totp(s, identity=identity, user_id=user_id, actor=actor)
    ).secret
    totp = pyotp.TOTP(secret)
    first = totp.now()
    assert (
        database.run(
            lambda s: twofactor.confirm_totp(
                s, identity=identity, user_id=user_id, code=first, actor=actor
            )
        )
        is not None
    )

    page.goto(f"{live_server.url}/signin")
    page.locator("#identifier").fill("li_na")
    page.locator("#password").fill(PASSWORD)
    page.locator("button.primary").click()
    expect(page.locator("#second_factor")).to_be_visible()
    screenshot(page, f"signin-2fa-{locale}")
    page.locator("#password").fill(PASSWORD)
    page.locator("#second_factor").fill(first)  # already used to confirm: refused
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "second_factor_invalid")
    codes = database.run(
        lambda s: twofactor.regenerate_recovery_codes(
            s, identity=identity, user_id=user_id, actor=actor
        )
    )
    page.locator("#password").fill(PASSWORD)
    page.locator("#second_factor").fill(codes[0])
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    page.goto(f"{live_server.url}/security")
    expect(page.locator("h1")).to_have_text(TEXT[locale]["security"])


def test_end_another_session(browser: Browser, live_server: LiveServer, locale: str) -> None:
    database = live_server.database
    identity = Identity(database.settings)
    database.run(
        lambda s: create_verified_user(
            s,
            identity=identity,
            handle="zhao_lei",
            display_name="Zhao Lei",
            password=PASSWORD,
            role="user",
            locale=locale,
            actor=Actor(kind="operator", id="e2e"),
            email="zhao.lei@example.com",
        )
    )
    phone = browser.new_context(
        locale=locale,
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)"
        " AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    )
    laptop = browser.new_context(
        locale=locale,
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    )
    pages = []
    for context in (phone, laptop):
        opened = context.new_page()
        opened.goto(f"{live_server.url}/signin")
        opened.locator("#identifier").fill("zhao_lei")
        opened.locator("#password").fill(PASSWORD)
        opened.locator("button.primary").click()
        expect(opened).to_have_url(re.compile(r"/home$"))
        opened.goto(f"{live_server.url}/security")
        expect(opened.locator("h1")).to_have_text(TEXT[locale]["security"])
        pages.append(opened)
    phone_page, laptop_page = pages
    phone_page.reload()
    other = phone_page.locator("li.session", has_text="Firefox")
    expect(other).to_have_count(1)
    screenshot(phone_page, f"security-two-sessions-{locale}")
    other.locator("button").click()
    expect(phone_page.locator("li.session")).to_have_count(1)
    laptop_page.reload()
    expect(laptop_page.locator("h1")).to_have_text(TEXT[locale]["sign_in"])
    phone.close()
    laptop.close()


def test_forgot_password_reset_and_sign_in(
    page: Page, live_server: LiveServer, locale: str
) -> None:
    database = live_server.database
    identity = Identity(database.settings)
    database.run(
        lambda s: create_verified_user(
            s,
            identity=identity,
            handle="chen_jing",
            display_name="Chen Jing",
            password=PASSWORD,
            role="user",
            locale=locale,
            actor=Actor(kind="operator", id="e2e"),
            email="chen.jing@example.com",
        )
    )
    page.goto(f"{live_server.url}/signin")
    page.locator("a[href='/forgot']").click()
    screenshot(page, f"forgot-{locale}")
    page.locator("#identifier").fill("chen.jing@example.com")
    page.locator("button.primary").click()
    expect(page.locator("#new_password")).to_be_visible()
    code = code_from_mailbox(page, live_server, "chen.jing@example.com")
    page.locator("#code").fill(code)
    page.locator("#new_password").fill("chenjing123")
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "password_too_weak")
    screenshot(page, f"reset-error-{locale}")
    page.locator("#code").fill(code)  # a refused password does not use the code up
    page.locator("#new_password").fill("lantern-orchid-river-88")
    page.locator("button.primary").click()
    expect(page.locator(".notice")).to_be_visible()
    page.locator("#identifier").fill("chen_jing")
    page.locator("#password").fill(PASSWORD)
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "invalid_credentials")
    page.locator("#password").fill("lantern-orchid-river-88")
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    page.goto(f"{live_server.url}/security")
    expect(page.locator("h1")).to_have_text(TEXT[locale]["security"])


def test_turn_on_two_factor_from_the_security_centre(
    page: Page, live_server: LiveServer, locale: str
) -> None:
    database = live_server.database
    identity = Identity(database.settings)
    database.run(
        lambda s: create_verified_user(
            s,
            identity=identity,
            handle="he_ming",
            display_name="He Ming",
            password=PASSWORD,
            role="user",
            locale=locale,
            actor=Actor(kind="operator", id="e2e"),
            email="he.ming@example.com",
        )
    )
    page.goto(f"{live_server.url}/signin?next=/security")  # back to the security centre after
    page.locator("#identifier").fill("he_ming")
    page.locator("#password").fill(PASSWORD)
    page.locator("button.primary").click()
    page.locator("form[action='/security/2fa/start'] button").click()
    expect(page.locator(".qr svg")).to_be_visible()
    screenshot(page, f"two-factor-setup-{locale}")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.locator("#code").fill("000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "code_invalid")
    secret = (
        page.locator("#totp-secret").inner_text().strip()
    )  # a wrong code starts over with a new key
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.locator("button.primary").click()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    screenshot(page, f"recovery-codes-{locale}")
    recovery = page.locator(".recovery-codes li").first.inner_text().strip()
    page.locator("a.button.primary").click()
    expect(page.locator("#two-factor .badge")).to_be_visible()
    expect(page.locator(".activity li[data-kind='totp_enabled']")).to_have_count(1)
    expect(page.locator(".activity li[data-kind='login_succeeded']")).to_have_count(1)
    screenshot(page, f"security-two-factor-on-{locale}")

    page.locator("form[action='/signout'] button").click()
    page.locator("#identifier").fill("he_ming")
    page.locator("#password").fill(PASSWORD)
    page.locator("button.primary").click()
    page.locator("#password").fill(PASSWORD)
    page.locator("#second_factor").fill(recovery)
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    page.goto(f"{live_server.url}/security")
    expect(page.locator("h1")).to_have_text(TEXT[locale]["security"])
