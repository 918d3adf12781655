"""Accessibility of every page purse serves, checked by axe-core in Chromium.

Each page is opened as a user reaches it (signed out, then signed in as the demo's wang_wei),
in English and zh-CN, at phone and desktop width (the navigation differs: a tab bar on the
phone, links in the top bar on the desktop). axe-core (tests/e2e/vendor, see VENDORED.md) is
injected into the page and run with its default rules: WCAG 2.x A and AA and its best
practices. A "serious" or "critical" violation fails the test; "moderate" and "minor" ones are
counted in the figures, with what axe could not decide ("needs_review", such as text on a
gradient), printed as one JSON line per run (`pytest -rP` or `-s` shows it) and written to
results/accessibility-<locale>-<viewport>.json. Screenshots go to results/screenshots.

axe does not check the focus ring (WCAG 2.4.7, 1.4.11), so the last test measures it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pyotp
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from support import SCREENSHOTS, LiveServer, screenshot

from purse.demo import DEMO_PASSWORD
from purse.identity.models import Session as SessionRow
from purse.identity.models import User
from purse.models import utc_now

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
RESULTS = SCREENSHOTS.parent
IMPACTS = ("critical", "serious", "moderate", "minor")
BLOCKING = {"critical", "serious"}
SETTLE_TIMEOUT_MS = 20_000


class Viewport(NamedTuple):
    size: ViewportSize
    user_agent: str


VIEWPORTS = {
    "phone": Viewport(
        {"width": 390, "height": 844},
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    "desktop": Viewport(
        {"width": 1280, "height": 800},
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    ),
}


class Audit:
    """Runs axe on the page as it is now and keeps what it found, page by page."""

    def __init__(self, page: Page, *, locale: str, viewport: str) -> None:
        self.page = page
        self.locale = locale
        self.viewport = viewport
        self.checked: list[str] = []
        self.violations: list[tuple[str, dict[str, Any]]] = []
        self.needs_review: list[tuple[str, dict[str, Any]]] = []
        self.axe_version = ""

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        # The page's strict CSP would refuse this inline script; the context bypasses CSP.
        self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations', 'incomplete']})"
        )
        self.axe_version = str(result["testEngine"]["version"])
        self.checked.append(name)
        self.violations.extend((name, violation) for violation in result["violations"])
        self.needs_review.extend((name, item) for item in result["incomplete"])
        screenshot(self.page, f"a11y-{name}-{self.viewport}-{self.locale}")

    def blocking(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, v) for name, v in self.violations if v["impact"] in BLOCKING]

    def explain(self) -> str:
        lines = []
        for name, violation in self.blocking():
            lines.append(
                f"{name}: {violation['id']} ({violation['impact']}): {violation['help']}"
                f" <{violation['helpUrl']}>"
            )
            for node in violation["nodes"]:
                summary = " ".join(str(node.get("failureSummary", "")).split())
                lines.append(f"    {' > '.join(map(str, node['target']))}: {summary}")
        return "\n".join(lines)

    def emit(self) -> dict[str, Any]:
        by_impact = Counter(str(v["impact"]) for _, v in self.violations)
        record = {
            "test": "accessibility",
            "locale": self.locale,
            "viewport": self.viewport,
            "axe": self.axe_version,
            "pages_checked": len(self.checked),
            "violations_by_impact": {impact: by_impact.get(impact, 0) for impact in IMPACTS},
            "rules": dict(sorted(Counter(v["id"] for _, v in self.violations).items())),
            "needs_review": dict(sorted(Counter(v["id"] for _, v in self.needs_review).items())),
        }
        line = json.dumps(record)
        print(line)
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"accessibility-{self.locale}-{self.viewport}.json"
        path.write_text(line + "\n", encoding="utf-8")
        return record


def signed_out_pages(audit: Audit, server: LiveServer) -> None:
    page = audit.page
    page.goto(f"{server.url}/signin")
    audit.check("signin")
    page.locator("#identifier").fill("wang_wei")
    page.locator("#password").fill("not-the-password")
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "invalid_credentials")
    audit.check("signin-error")
    page.goto(f"{server.url}/signup")
    audit.check("signup")
    page.goto(f"{server.url}/verify?identifier=new.person%40example.com")
    audit.check("verify")
    page.goto(f"{server.url}/forgot")
    audit.check("forgot")
    page.locator("#identifier").fill("nobody@example.com")
    page.locator("button.primary").click()
    expect(page.locator("#new_password")).to_be_visible()
    audit.check("reset")
    # The HTML error page, as a browser meets it: a form whose CSRF cookie has gone.
    page.goto(f"{server.url}/signin")
    page.context.clear_cookies()
    page.locator("#identifier").fill("wang_wei")
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("button.primary").click()
    expect(page.locator(".error")).to_have_attribute("data-code", "csrf_failed")
    audit.check("error-csrf")


def wallet_pages(audit: Audit, server: LiveServer) -> None:
    page = audit.page
    page.goto(f"{server.url}/signin")
    page.locator("#identifier").fill("wang_wei")
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("button.primary").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    audit.check("home")
    page.goto(f"{server.url}/activity")
    audit.check("activity")
    page.locator("#activity-rows .op a").first.click()
    expect(page.locator("#operation")).to_be_visible()
    audit.check("operation")
    page.locator("a[href$='/receipt']").click()
    expect(page.locator(".receipt .reference")).to_be_visible()
    audit.check("receipt")
    response = page.goto(f"{server.url}/activity/PW0000000000")  # the error page, signed in
    assert response is not None and response.status == 404
    audit.check("error-not-found")
    page.goto(f"{server.url}/send?to=li_na&amount=12.50&note=noodles")
    expect(page.locator("#recipient [data-masked-name]")).to_be_visible()
    audit.check("send")
    page.locator("button.primary").click()
    expect(page.locator("#confirm-send")).to_be_visible()
    audit.check("send-review")
    for path in ("/request", "/receive", "/top-up", "/withdraw"):
        page.goto(f"{server.url}{path}")
        audit.check(path.strip("/"))
    page.goto(f"{server.url}/convert")
    audit.check("convert")
    page.locator("#amount").fill("721")
    page.locator("select[name='currency']").select_option("CNY")
    page.locator("#to_currency").select_option("USD")
    page.locator("button.primary").click()
    expect(page.locator("#quote-buy")).to_be_visible()
    audit.check("convert-quote")
    page.goto(f"{server.url}/funding-sources")
    audit.check("funding-sources")
    page.goto(f"{server.url}/statements")
    audit.check("statements")
    page.locator("#format").select_option("csv")
    page.locator("button.primary").click()
    expect(page.locator("#statement-download")).to_be_visible(timeout=SETTLE_TIMEOUT_MS)
    audit.check("statement")


def expect_current_page_in_nav(page: Page, href: str) -> None:
    """The navigation shown at this width (top bar or tab bar) marks ``href`` as current."""
    current = page.locator("a[aria-current='page']").filter(visible=True)
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("href", href)


def security_pages(audit: Audit, server: LiveServer) -> None:
    page = audit.page
    page.goto(f"{server.url}/security")
    expect_current_page_in_nav(page, "/security")
    audit.check("security")
    page.goto(f"{server.url}/security/password")
    expect_current_page_in_nav(page, "/security")
    audit.check("change-password")
    age_sign_in(server, "wang_wei")  # so turning on 2FA asks for the password again
    page.goto(f"{server.url}/security")
    page.locator("form[action='/security/2fa/start'] button").click()
    expect(page.locator("form[action='/security/step-up']")).to_be_visible()
    expect_current_page_in_nav(page, "/security")
    audit.check("step-up")
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("button.primary").click()
    page.locator("form[action='/security/2fa/start'] button").click()
    expect(page.locator(".qr svg")).to_be_visible()
    expect_current_page_in_nav(page, "/security")
    audit.check("two-factor-setup")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.locator("button.primary").click()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    expect_current_page_in_nav(page, "/security")
    audit.check("recovery-codes")
    page.goto(f"{server.url}/dev/mailbox")
    audit.check("mailbox")


def age_sign_in(server: LiveServer, handle: str) -> None:
    """Move the user's sign-ins an hour back, past the step-up window."""

    def age(session: Session) -> None:
        user_id = select(User.id).where(User.handle == handle).scalar_subquery()
        session.execute(
            update(SessionRow)
            .where(SessionRow.user_id == user_id)
            .values(authenticated_at=utc_now() - timedelta(hours=1))
        )

    server.database.run(age)


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_no_serious_accessibility_violation_on_any_page(
    browser: Browser, wallet_server: LiveServer, locale: str, viewport: str
) -> None:
    size, user_agent = VIEWPORTS[viewport]
    context = browser.new_context(
        locale=locale, bypass_csp=True, viewport=size, user_agent=user_agent
    )
    audit = Audit(context.new_page(), locale=locale, viewport=viewport)
    try:
        signed_out_pages(audit, wallet_server)
        wallet_pages(audit, wallet_server)
        security_pages(audit, wallet_server)
    finally:
        context.close()
    audit.emit()
    assert not audit.blocking(), "axe found serious or critical violations:\n" + audit.explain()


# The focus ring ---------------------------------------------------------------------------
# axe does not check it, so this does: the ring's colour against what is drawn just outside
# it (read on the ring, at the first edge inside the window) and against the element it
# surrounds, 3:1 each (WCAG 1.4.11).

RING = """element => {
    const backgrounds = node => {
        const layers = [];
        for (; node; node = node.parentElement) {
            const style = getComputedStyle(node);
            layers.push({color: style.backgroundColor, image: style.backgroundImage});
        }
        return layers;
    };
    const style = getComputedStyle(element);
    const box = element.getBoundingClientRect();
    const reach = parseFloat(style.outlineOffset) + parseFloat(style.outlineWidth) / 2;
    const middleX = box.left + box.width / 2, middleY = box.top + box.height / 2;
    const edges = [[middleX, box.top - reach], [middleX, box.bottom + reach],
                   [box.left - reach, middleY], [box.right + reach, middleY]];
    const outside = edges
        .filter(([x, y]) => x >= 0 && y >= 0 && x < innerWidth && y < innerHeight)
        .map(([x, y]) => document.elementsFromPoint(x, y).find(
            node => node !== element && !element.contains(node)))
        .find(node => node);
    return {
        visible: element.matches(":focus-visible"),
        style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: style.outlineColor,
        own: backgrounds(element), outside: outside ? backgrounds(outside) : [],
    };
}"""


def parse_color(text: str) -> tuple[float, float, float, float]:
    match = re.fullmatch(r"rgba?\(([\d.]+), ([\d.]+), ([\d.]+)(?:, ([\d.]+))?\)", text)
    assert match, f"a colour this test cannot read: {text}"
    red, green, blue, alpha = match.groups()
    return float(red), float(green), float(blue), float(alpha or 1)


def flatten(layers: list[dict[str, str]]) -> tuple[float, float, float]:
    """The colour a stack of backgrounds shows (innermost first), over the white canvas."""
    assert all(layer["image"] == "none" for layer in layers), f"a gradient: {layers}"
    shown = (255.0, 255.0, 255.0)
    for layer in reversed(layers):
        *rgb, alpha = parse_color(layer["color"])
        shown = (
            rgb[0] * alpha + shown[0] * (1 - alpha),
            rgb[1] * alpha + shown[1] * (1 - alpha),
            rgb[2] * alpha + shown[2] * (1 - alpha),
        )
    return shown


def contrast(first: tuple[float, float, float], second: tuple[float, float, float]) -> float:
    def luminance(rgb: tuple[float, float, float]) -> float:
        channels = [c / 255 for c in rgb]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def ring_problems(page: Page, selector: str, viewport: str) -> list[str]:
    """Focus ``selector`` as a keyboard user would and say what is wrong with its ring."""
    target = page.locator(selector).filter(visible=True).first
    page.keyboard.press("Tab")  # keyboard focus, so what is focused next shows :focus-visible
    target.focus()
    ring = target.evaluate(RING)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{page.url.split('/', 3)[-1]} {selector}".lower())
    screenshot(page, f"a11y-focus-{viewport}-{slug.strip('-')}")
    name = f"{page.url} {selector}"
    if not ring["visible"] or ring["style"] in ("none", "hidden") or ring["width"] < 2:
        return [f"{name}: no focus ring ({ring['style']} {ring['width']}px)"]
    assert ring["outside"], f"{name}: nothing drawn outside the element at its ring"
    *rgb, alpha = parse_color(ring["color"])
    outside = flatten(ring["outside"])
    color = tuple(c * alpha + o * (1 - alpha) for c, o in zip(rgb, outside, strict=True))
    problems = []
    for where, background in (("outside it", outside), ("on the element", flatten(ring["own"]))):
        ratio = contrast(color, background)  # type: ignore[arg-type]
        if ratio < 3:
            problems.append(f"{name}: ring {ring['color']} is {ratio:.2f}:1 {where}")
    return problems


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_the_focus_ring_stands_out_wherever_it_is_drawn(
    browser: Browser, wallet_server: LiveServer, viewport: str
) -> None:
    size, user_agent = VIEWPORTS[viewport]
    context = browser.new_context(locale="en", viewport=size, user_agent=user_agent)
    page = context.new_page()
    nav = ".nav" if viewport == "desktop" else ".tabbar"
    problems = []
    try:
        page.goto(f"{wallet_server.url}/signin")
        page.keyboard.press("Tab")
        skip = page.locator(".skip-link")
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box is not None and box["y"] >= 0 and box["width"] > 10, "skip link not shown"
        for selector in (
            ".skip-link",
            ".brand",
            ".locale-switch button",
            "#identifier",
            "button.primary",
            "a[href='/forgot']",
        ):
            problems += ring_problems(page, selector, viewport)
        page.locator("#identifier").fill("wang_wei")
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("button.primary").click()
        expect(page).to_have_url(re.compile(r"/home$"))
        for selector in (
            f"{nav} a[aria-current='page']",
            f"{nav} a[href='/send']",
            ".actions a[href='/send']",
            "#recent-title a",
        ):
            problems += ring_problems(page, selector, viewport)
        page.goto(f"{wallet_server.url}/security")
        for selector in (
            "form[action='/security/2fa/start'] button",
            "form[action='/security/sessions/end-others'] button",
        ):
            problems += ring_problems(page, selector, viewport)
    finally:
        context.close()
    if problems:
        pytest.fail("the focus ring does not stand out:\n" + "\n".join(problems), pytrace=False)
