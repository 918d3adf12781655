"""Devices are stored as names and worded in the reader's language; old English rows still read."""

from __future__ import annotations

import pytest

from purse.devices import Device, device_display
from purse.identity.sessions import device_of
from purse.notify.texts import render

PIXEL = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_a_device_is_stored_in_no_language() -> None:
    pixel = device_of(PIXEL)
    assert pixel == Device("Chrome Mobile", "Android", "Pixel 8")
    assert pixel.stored() == '["Chrome Mobile", "Android", "Pixel 8"]'
    assert Device.parse(pixel.stored()) == pixel
    assert device_of("python-httpx/0.28.1") == Device("python-httpx/0.28.1")
    assert device_of("") == Device() and device_of("   ") == Device()
    assert device_of("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0") == Device(
        "Firefox", "Linux", ""
    )


@pytest.mark.parametrize(
    ("device", "english", "chinese"),
    [
        (
            Device("Chrome", "Android", "Pixel 8"),
            "Chrome on Android (Pixel 8)",
            "Android 上的 Chrome（Pixel 8）",
        ),
        (Device("Firefox", "Windows", ""), "Firefox on Windows", "Windows 上的 Firefox"),
        (Device("Safari", "", "iPhone"), "Safari (iPhone)", "Safari（iPhone）"),
        (Device("curl", "", ""), "curl", "curl"),
        (Device(), "Unknown device", "未知设备"),
    ],
)
def test_a_device_is_worded_per_language(device: Device, english: str, chinese: str) -> None:
    assert device.display("en") == english
    assert device.display("zh-CN") == chinese
    # The English sentence is what purse stored before; such a row reads the same way.
    assert device.legacy_english() == english
    assert Device.parse(english) == device
    assert device_display(english, "zh-CN") == chinese
    assert device_display(device.stored(), "zh-CN") == chinese


def test_odd_stored_values_never_fail() -> None:
    assert device_display(None, "en") == "Unknown device"
    assert device_display("[1, 2]", "en") == "[1, 2]"  # not ours: shown as it is
    assert device_display("[broken", "zh-CN") == "[broken"
    long = Device.of("B" * 300, "S" * 300, "M" * 300)
    assert len(long.stored()) <= 128
    assert Device.of('Evil"\\\x00Browser', "OS", None).browser == "EvilBrowser"
    assert Device.of(None, "Android", "Pixel 8") == Device()


def test_the_new_device_message_words_the_device_for_its_recipient() -> None:
    stored = device_of(IPHONE).stored()
    chinese = render("new_device_sign_in", "zh-CN", {"device": stored})
    assert chinese.body.startswith(
        "你的 purse 账户有新的登录，设备：iOS 上的 Mobile Safari（iPhone）。"
    )
    english = render("new_device_sign_in", "en", {"device": stored})
    assert english.subject == "New sign-in to purse from Mobile Safari on iOS (iPhone)."
    # A message queued before the change carries the English sentence.
    queued = render("new_device_sign_in", "zh-CN", {"device": "Chrome on Android (Pixel 8)"})
    assert "设备：Android 上的 Chrome（Pixel 8）。" in queued.body


def test_message_texts_count_in_both_languages() -> None:
    assert (
        "works for 1 minute;" in render("code_verify_sms", "en", {"code": "1", "minutes": 1}).body
    )
    assert (
        "works for 5 minutes;" in render("code_verify_sms", "en", {"code": "1", "minutes": 5}).body
    )
    assert "5 分钟内有效" in render("code_verify_sms", "zh-CN", {"code": "1", "minutes": 5}).body
    locked = render("account_locked", "en", {"minutes": 1})
    assert locked.subject == (
        "Your purse account was locked for 1 minute after too many failed sign-ins."
    )
