"""The API docs in Chromium with no network: /docs (Swagger UI) and /redoc (ReDoc) render every
operation of purse's OpenAPI from vendored files, under purse's CSP.

Every request that is not to 127.0.0.1 is aborted and recorded, so a CDN reference left in
a page or a bundle fails the test; so does any console error (CSP violations are reported
there) or uncaught exception. Screenshots at phone and desktop width go to results/screenshots.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, ViewportSize, expect
from support import SCREENSHOTS, LiveServer, screenshot

VIEWPORTS: dict[str, ViewportSize] = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 900},
}
# Each renderer downloads a megabyte or two of script, then the schema, before it draws: on
# a busy machine that can outlast Playwright's 5 s default.
RENDER_TIMEOUT_MS = 30_000
SEARCH_ATTEMPT_COUNT_MAX = 40  # ReDoc answers searches once its worker has built the index


@dataclass
class BrowserTrouble:
    offsite: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.errors.append(message.text)


@dataclass
class DocsVisit:
    page: Page
    trouble: BrowserTrouble
    viewport: str


def open_offline(browser: Browser, viewport: str) -> tuple[Page, BrowserTrouble]:
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    trouble = BrowserTrouble()

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            trouble.offsite.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.on("console", trouble.record_console)
    page.on("pageerror", lambda error: trouble.errors.append(f"uncaught: {error}"))
    return page, trouble


@pytest.fixture(params=sorted(VIEWPORTS))
def visit(browser: Browser, request: pytest.FixtureRequest) -> Iterator[DocsVisit]:
    page, trouble = open_offline(browser, str(request.param))
    yield DocsVisit(page, trouble, str(request.param))
    page.context.close()


def first_screen(page: Page, name: str) -> None:
    """ReDoc's page is tens of thousands of pixels long: its first screen says enough."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def operations(server: LiveServer, page: Page) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation in the schema the server publishes."""
    spec = page.request.get(f"{server.url}/openapi.json").json()
    found = [
        (method, path, operation)
        for path, path_item in spec["paths"].items()
        for method, operation in path_item.items()
    ]
    assert any(path == "/v1/wallet/transfers" for _, path, _ in found)
    return found


def test_swagger_ui_shows_every_operation_offline(
    visit: DocsVisit, live_server: LiveServer
) -> None:
    page = visit.page
    expected = {(method.upper(), path) for method, path, _ in operations(live_server, page)}
    page.goto(f"{live_server.url}/docs")
    transfers = page.locator(".opblock-post").filter(
        has=page.locator(".opblock-summary-path[data-path='/v1/wallet/transfers']")
    )
    expect(transfers).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    for method, path in expected:
        block = page.locator(f".opblock-{method.lower()}").filter(
            has=page.locator(f".opblock-summary-path[data-path='{path}']")
        )
        expect(block.first).to_be_attached()
    rendered = page.evaluate(
        """() => [...document.querySelectorAll(".opblock")].map((block) => [
            block.querySelector(".opblock-summary-method").textContent,
            block.querySelector(".opblock-summary-path").dataset.path,
        ])"""
    )
    assert {(method, path) for method, path in rendered} == expected
    # Opened, an operation shows its parameters and its highlighted examples.
    transfers.locator(".opblock-summary").click()
    expect(transfers.locator(".parameters")).to_contain_text("Idempotency-Key")
    expect(transfers.locator(".highlight-code").first).to_be_visible()
    screenshot(page, f"api-docs-swagger-{visit.viewport}")
    assert visit.trouble.offsite == [] and visit.trouble.errors == []


def test_redoc_shows_every_operation_offline(visit: DocsVisit, live_server: LiveServer) -> None:
    page = visit.page
    published = operations(live_server, page)
    titles = {
        f"operation/{operation['operationId']}": operation["summary"] for *_, operation in published
    }
    [send] = [
        f"operation/{operation['operationId']}"
        for method, path, operation in published
        if (method, path) == ("post", "/v1/wallet/transfers")
    ]
    page.goto(f"{live_server.url}/redoc")
    expect(page.locator(f"[data-section-id='{send}'] h2")).to_have_text(
        titles[send], timeout=RENDER_TIMEOUT_MS
    )
    for section_id, title in titles.items():
        expect(page.locator(f"[data-section-id='{section_id}'] h2").first).to_have_text(title)
    rendered = page.evaluate(
        """() => [...document.querySelectorAll("[data-section-id^='operation/']")].map(
            (section) => [section.dataset.sectionId, section.querySelector("h2").textContent.trim()]
        )"""
    )
    assert dict(rendered) == titles
    first_screen(page, f"api-docs-redoc-{visit.viewport}")
    assert visit.trouble.offsite == [] and visit.trouble.errors == []


@pytest.mark.parametrize("visit", ["desktop"], indirect=True)  # on a phone, search is in a menu
def test_redoc_search_runs_in_its_worker(visit: DocsVisit, live_server: LiveServer) -> None:
    """ReDoc searches in a worker made from a blob: URL, which only /redoc's CSP allows."""
    page = visit.page
    titles = {operation["summary"] for *_, operation in operations(live_server, page)}
    page.goto(f"{live_server.url}/redoc")
    expect(page.locator("[data-section-id^='operation/']").first).to_be_visible(
        timeout=RENDER_TIMEOUT_MS
    )
    results = page.locator("[data-role='search:results'] li")
    for _attempt in range(SEARCH_ATTEMPT_COUNT_MAX):
        page.get_by_placeholder("Search...").fill("statement")
        page.wait_for_timeout(250)
        if results.count():
            break
    found = set(
        results.evaluate_all("(items) => items.map((item) => item.getAttribute('aria-label'))")
    )
    assert {title for title in titles if "statement" in title.lower()} <= found <= titles
    first_screen(page, "api-docs-redoc-search")
    assert visit.trouble.offsite == [] and visit.trouble.errors == []
