"""Settings: environment, custom assets, the secret key rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from purse.settings import (
    SECRET_SETTINGS,
    SecretKeyWarning,
    Settings,
    describe_settings,
    env_text,
    unknown_variable_warnings,
)

ROOT = Path(__file__).resolve().parents[2]
# Misspelled on purpose by the tests of the warning about them.
MISSPELLED = {
    "PURSE_DATABSE_URL",
    "PURSE_PROT",
    "PURSE_LOG_LEVL",
    "PURSE_SMTP_PASWORD",
    "PURSE_ZQX",
}


def test_defaults_point_at_the_embedded_database() -> None:
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///purse.db"
    assert settings.sqlite_path() == Path("purse.db")
    assert settings.host == "127.0.0.1" and settings.port == 8000


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURSE_DATABASE_URL", "postgresql://u@localhost/p")
    monkeypatch.setenv("PURSE_CUSTOM_ASSETS", "usdt:6, PTS:0")
    settings = Settings(_env_file=None)
    assert not settings.is_sqlite and settings.sqlite_path() is None
    assert settings.custom_assets == {"USDT": 6, "PTS": 0}


@pytest.mark.parametrize("value", ["USDT", "USDT:x", "U:2", "USDT:19"])
def test_bad_custom_assets_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(custom_assets=value, _env_file=None)


def test_secret_key_is_generated_once_next_to_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/wallet.db"
    with pytest.warns(SecretKeyWarning):
        first = Settings(database_url=url, _env_file=None).resolved_secret_key()
    key_file = tmp_path / "wallet.db.secret"
    assert key_file.read_text().strip() == first and len(first) >= 48
    assert key_file.stat().st_mode & 0o077 == 0
    again = Settings(database_url=url, _env_file=None).resolved_secret_key()
    assert again == first


@pytest.mark.parametrize("key", [None, "", "changeme", "short"])
def test_production_refuses_a_missing_or_weak_secret(key: str | None) -> None:
    with pytest.raises(ValidationError, match="PURSE_SECRET_KEY"):
        Settings(env="production", secret_key=key, _env_file=None)
    strong = "k" * 40
    assert (
        Settings(env="production", secret_key=strong, _env_file=None).resolved_secret_key()
        == strong
    )


def test_each_default_is_shown_as_its_variable_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings(_env_file=None).model_dump()
    for shown in describe_settings(Settings(_env_file=None)):
        if shown.default in (None, {}, []):
            continue
        monkeypatch.setenv(shown.variable, env_text(shown.default))
    from_text = Settings(_env_file=None).model_dump()
    assert from_text == defaults


def test_secrets_and_passwords_in_urls_are_masked() -> None:
    settings = Settings(
        database_url="postgresql://purse:p@ss:word@db.internal:5433/purse",
        secret_key="k" * 40,
        smtp_password="smtp-secret",
        encryption_keys="k1:" + "QUJD" * 11,
        _env_file=None,
    )
    shown = {item.variable: item.value for item in describe_settings(settings)}
    assert shown["PURSE_DATABASE_URL"] == "postgresql://purse:***@db.internal:5433/purse"
    assert shown["PURSE_SECRET_KEY"] == shown["PURSE_SMTP_PASSWORD"] == "***"
    assert shown["PURSE_ENCRYPTION_KEYS"] == "***"
    every_secret_field = {
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
    }
    assert every_secret_field <= SECRET_SETTINGS


def test_purse_variables_of_the_tests_and_scripts_are_not_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    found: set[str] = set()
    for folder in ("tests", "scripts"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                text = path.read_text(encoding="utf-8", errors="replace")
                found |= set(re.findall(r"\bPURSE_[A-Z][A-Z0-9_]*", text))
    assert {"PURSE_TEST_POSTGRES_URL", "PURSE_RELIABILITY_SIZE", "PURSE_DATABASE_URL"} <= found
    assert unknown_variable_warnings(dict.fromkeys(found - MISSPELLED, "1")) == []


def test_unknown_variables_get_the_closest_setting_if_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("purse_log_levl=debug\nOTHER=1\n", encoding="utf-8")
    environ = {"PURSE_SMTP_PASWORD": "x", "PURSE_ZQX": "1", "HOME": "/root", "PURSE_PORT": "1"}
    assert unknown_variable_warnings(environ) == [
        "PURSE_SMTP_PASWORD is not a purse setting and is ignored; "
        "did you mean PURSE_SMTP_PASSWORD?",
        "PURSE_ZQX is not a purse setting and is ignored",
        "PURSE_LOG_LEVL in .env is not a purse setting and is ignored; "
        "did you mean PURSE_LOG_LEVEL?",
    ]
