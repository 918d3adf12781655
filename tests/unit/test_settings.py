"""Settings: environment, custom assets, the secret key rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from purse.settings import SecretKeyWarning, Settings


def test_defaults_point_at_the_embedded_database() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "sqlite:///purse.db"
    assert settings.sqlite_path() == Path("purse.db")
    assert settings.host == "127.0.0.1" and settings.port == 8000


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURSE_DATABASE_URL", "postgresql://u@localhost/p")
    monkeypatch.setenv("PURSE_CUSTOM_ASSETS", "usdt:6, PTS:0")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert not settings.is_sqlite and settings.sqlite_path() is None
    assert settings.custom_assets == {"USDT": 6, "PTS": 0}


@pytest.mark.parametrize("value", ["USDT", "USDT:x", "U:2", "USDT:19"])
def test_bad_custom_assets_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(custom_assets=value, _env_file=None)  # type: ignore[call-arg]


def test_secret_key_is_generated_once_next_to_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/wallet.db"
    with pytest.warns(SecretKeyWarning):
        first = Settings(database_url=url, _env_file=None).resolved_secret_key()  # type: ignore[call-arg]
    key_file = tmp_path / "wallet.db.secret"
    assert key_file.read_text().strip() == first and len(first) >= 48
    assert key_file.stat().st_mode & 0o077 == 0
    again = Settings(database_url=url, _env_file=None).resolved_secret_key()  # type: ignore[call-arg]
    assert again == first


@pytest.mark.parametrize("key", [None, "", "changeme", "short"])
def test_production_refuses_a_missing_or_weak_secret(key: str | None) -> None:
    with pytest.raises(ValidationError, match="PURSE_SECRET_KEY"):
        Settings(env="production", secret_key=key, _env_file=None)  # type: ignore[arg-type,call-arg]
    strong = "k" * 40
    assert (
        Settings(env="production", secret_key=strong, _env_file=None).resolved_secret_key()
        == strong
    )  # type: ignore[arg-type,call-arg]
