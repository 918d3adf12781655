"""Helpers of the browser tests: the live server (``tests/live_server.py``) and screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from live_server import LiveServer

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "results" / "screenshots"
__all__ = ["CHROMIUM_FLAGS", "SCREENSHOTS", "LiveServer", "screenshot"]


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
