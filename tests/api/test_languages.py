"""What a reader of each language sees: devices, times, counts, titles, and the notice for
readers of Traditional Chinese. Pages through the HTTP client, as a browser asks for them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from factories import make_settings
from purse.app import create_app
from purse.audit.service import Actor
from purse.db import Database
from purse.identity.context import Identity
from purse.identity.models import Session as SessionRow
from purse.identity.signup import create_verified_user
from purse.notify.service import mailbox

PASSWORD = "river-lamp-quiet-74"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
PIXEL = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)
# 16:30 UTC is half past midnight the next day in Shanghai.
LAST_SEEN = datetime(2025, 1, 15, 16, 30, tzinfo=UTC)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(
        make_settings(database_url, timezone="Asia/Shanghai", login_delay_after_failures=1)
    )
    db.run(
        lambda s: create_verified_user(
            s,
            identity=Identity(db.settings),
            handle="wang_wei",
            display_name="Wang Wei",
            password=PASSWORD,
            role="user",
            locale="zh-CN",
            actor=Actor(kind="operator", id="t"),
            email="wang.wei@example.com",
            phone="+8613800138000",
        )
    )
    yield db
    db.dispose()


def browser(database: Database, language: str, user_agent: str = IPHONE) -> TestClient:
    return TestClient(
        create_app(database.settings, database=database),
        base_url="http://127.0.0.1:8000",
        headers={"Accept-Language": language, "User-Agent": user_agent, "Accept": "text/html"},
    )


def sign_in(client: TestClient, password: str = PASSWORD) -> str:
    client.get("/signin")
    response = client.post(
        "/signin",
        data={
            "identifier": "wang_wei",
            "password": password,
            "csrf_token": client.cookies["purse_csrf"],
        },
        follow_redirects=False,
    )
    return response.text if response.status_code != 303 else ""


def new_device_notices(database: Database) -> int:
    cipher = Identity(database.settings).cipher
    messages = database.run(
        lambda s: mailbox(s, cipher=cipher, recipient="wang.wei@example.com"), write=False
    )
    return sum(1 for message in messages if message.template == "new_device_sign_in")


@pytest.mark.parametrize(
    ("language", "iphone", "pixel", "last_used"),
    [
        (
            "en",
            "Mobile Safari on iOS (iPhone)",
            "Chrome on Android (Pixel 8)",
            "1/16/25, 12:30\u202fAM",
        ),
        (
            "zh-CN",
            "iOS 上的 Mobile Safari（iPhone）",
            "Android 上的 Chrome（Pixel 8）",
            "2025/1/16 00:30",
        ),
    ],
)
def test_security_lists_devices_and_times_in_the_readers_words(
    database: Database, language: str, iphone: str, pixel: str, last_used: str
) -> None:
    """A session from before devices were stored as names still reads in both languages."""
    with browser(database, language, PIXEL) as phone:
        assert sign_in(phone) == ""
    stored = database.run(lambda s: list(s.scalars(select(SessionRow.device))), write=False)
    assert stored == ['["Chrome Mobile", "Android", "Pixel 8"]']
    # As purse stored it before: the English sentence.
    database.run(
        lambda s: s.execute(
            update(SessionRow).values(device="Chrome on Android (Pixel 8)", last_seen_at=LAST_SEEN)
        )
    )
    with browser(database, language) as client:
        assert sign_in(client) == ""
        page = client.get("/security")
    assert page.status_code == 200
    assert f"<strong>{iphone}</strong>" in page.text
    assert f"<strong>{pixel}</strong>" in page.text
    assert last_used in page.text  # PURSE_TIMEZONE, the reader's date format
    assert "UTC" not in page.text and "2025-01-15 16:30" not in page.text


def test_a_device_seen_before_the_change_is_not_new(database: Database) -> None:
    with browser(database, "zh-CN", PIXEL) as client:
        assert sign_in(client) == ""
    assert new_device_notices(database) == 1
    database.run(
        lambda s: s.execute(update(SessionRow).values(device="Chrome Mobile on Android (Pixel 8)"))
    )
    with browser(database, "zh-CN", PIXEL) as client:
        assert sign_in(client) == ""
    assert new_device_notices(database) == 1
    with browser(database, "zh-CN", IPHONE) as client:
        assert sign_in(client) == ""
    assert new_device_notices(database) == 2


def test_the_sessions_api_words_devices_for_the_caller(database: Database) -> None:
    with browser(database, "en") as client:
        token = client.post(
            "/v1/auth/token", json={"identifier": "wang_wei", "password": PASSWORD}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        zh = client.get("/v1/me/sessions", headers={**auth, "Accept-Language": "zh-CN"}).json()
        en = client.get("/v1/me/sessions", headers={**auth, "Accept-Language": "en"}).json()
    assert zh[0]["device"] == "iOS 上的 Mobile Safari（iPhone）"
    assert en[0]["device"] == "Mobile Safari on iOS (iPhone)"
    assert zh[0]["device_names"] == {"browser": "Mobile Safari", "system": "iOS", "model": "iPhone"}


@pytest.mark.parametrize(
    ("language", "wait"),
    [("en", "Wait 1 second and try again."), ("zh-CN", "请等待 1 秒后再试。")],
)
def test_a_throttled_sign_in_counts_in_the_readers_grammar(
    database: Database, language: str, wait: str
) -> None:
    with browser(database, language) as client:
        assert 'data-code="invalid_credentials"' in sign_in(client, "wrong-password-1")
        page = sign_in(client, "wrong-password-2")
    assert 'data-code="login_throttled"' in page and wait in page


@pytest.mark.parametrize(("language", "title"), [("en", "Form expired"), ("zh-CN", "表单已失效")])
def test_an_error_page_has_the_problems_title(
    database: Database, language: str, title: str
) -> None:
    with browser(database, language) as client:
        client.get("/signin")
        page = client.post("/signin", data={"identifier": "wang_wei", "password": PASSWORD})
    assert page.status_code == 403 and 'data-code="csrf_failed"' in page.text
    assert f"<h1>{title}</h1>" in page.text and f"<title>{title} · purse</title>" in page.text


@pytest.mark.parametrize(
    ("language", "notice"),
    [
        ("zh-TW", True),
        ("zh-HK,zh;q=0.9", True),
        ("zh-Hant-TW", True),
        ("zh-CN", False),
        ("zh", False),
        ("en", False),
    ],
)
def test_readers_of_traditional_chinese_are_told_what_is_offered(
    database: Database, language: str, notice: bool
) -> None:
    with browser(database, language) as client:
        page = client.get("/signin")
    assert ("目前僅提供簡體中文與英文介面" in page.text) is notice
    assert ('<html lang="zh-CN">' in page.text) is language.startswith("zh")
