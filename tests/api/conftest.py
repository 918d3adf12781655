"""Fixtures of the API tests: a purse app on a database of its own, and two people."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api_support import Api
from factories import make_settings, seal_and_check
from purse.app import create_app
from purse.db import Database


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """The app over HTTP (its simulator's bank settles at once); everything ``purse ledger
    verify`` checks must pass after the test."""
    database = Database(make_settings(database_url, simulator_settle_seconds=0))
    # On 127.0.0.1 over http the development settings send cookies without Secure.
    app = create_app(database.settings, database=database)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield Api(client=client, database=database)
    report = seal_and_check(database)
    assert report.ok, report.problems
    database.dispose()


@pytest.fixture
def wang(api: Api) -> dict[str, str]:
    return api.user("wang_wei", "Wang Wei", phone="+8613800138000")


@pytest.fixture
def zhang(api: Api) -> dict[str, str]:
    return api.user("zhang_wei", "Zhang Wei", email="zhang.wei@example.com")
