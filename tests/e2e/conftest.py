"""Browser tests: a real `purse` server on 127.0.0.1 and Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright is pointed at /usr/bin/chromium (installed by
scripts/test). Screenshots of every page a test visits go to results/screenshots.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from support import CHROMIUM_FLAGS, LiveServer

from factories import make_settings
from purse import migrate
from purse.assembly import assemble
from purse.db import Database


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    database = Database(
        make_settings(
            f"sqlite:///{tmp_path}/e2e.db", env="development", login_delay_after_failures=100
        )
    )
    migrate.upgrade(database)
    with LiveServer(database) as server:
        yield server
    database.dispose()


@pytest.fixture
def wallet_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server with its background jobs (the simulator's bank settles in half a second)
    and the demo's people and history; the ledger must verify after the journey."""
    from purse import demo

    database = Database(
        make_settings(
            f"sqlite:///{tmp_path}/wallet.db",
            env="development",
            simulator_settle_seconds=0.5,
            worker_interval_seconds=0.2,
        )
    )
    migrate.upgrade(database)
    purse = assemble(database.settings, database=database)
    demo.seed(purse)
    with LiveServer(database, run_workers=True) as server:
        yield server
    report = database.run(purse.verify, write=False)
    database.dispose()
    assert report.ok, report.problems


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(params=["en", "zh-CN"])
def locale(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def page(browser: Browser, locale: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(
        locale=locale,
        viewport={"width": 390, "height": 844},
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 "
        "Safari/604.1",
    )
    opened = context.new_page()
    yield opened
    context.close()
