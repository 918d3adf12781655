"""Settings from ``PURSE_*`` environment variables and a ``.env`` file.

Every limit is named ``*_max`` (or ``*_seconds``) and lives here, so an operator
can find and change it in one place.
"""

from __future__ import annotations

import secrets
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///purse.db"
SECRET_KEY_MIN_LENGTH = 32
LIMIT_PERIODS = ("per_transfer", "per_day", "per_month")


def _limits(per_transfer: str, per_day: str, per_month: str) -> dict[str, str]:
    return {"per_transfer": per_transfer, "per_day": per_day, "per_month": per_month}


# Money a user may send or withdraw, by KYC level and asset, in major units ("*": any
# other asset). Level 0 is an account with a confirmed contact and nothing more.
DEFAULT_WALLET_LIMITS: dict[str, dict[str, dict[str, str]]] = {
    "0": {
        "CNY": _limits("2000", "5000", "20000"),
        "*": _limits("300", "800", "3000"),
    },
    "1": {
        "CNY": _limits("20000", "50000", "200000"),
        "*": _limits("3000", "8000", "30000"),
    },
    "2": {
        "CNY": _limits("200000", "500000", "2000000"),
        "*": _limits("30000", "80000", "300000"),
    },
}


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class SecretKeyWarning(UserWarning):
    """A secret key was generated and stored next to the embedded database."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PURSE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.development
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: SecretStr | None = None

    # Custom assets beside ISO 4217, as CODE:SCALE pairs, e.g. "PTS:0,USDT:6,BTC:8".
    custom_assets: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)

    # Encryption of personal data at rest: "id:base64key,..." (32-byte keys); the
    # current key encrypts, every listed key decrypts. Derived from the secret if unset.
    encryption_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    encryption_key_current: str | None = None

    # Passwords (argon2id; NIST SP 800-63B: length and a blocklist, no composition rules).
    password_hash_time_cost: int = 3
    password_hash_memory_cost_kib: int = 65536
    password_hash_parallelism: int = 1
    password_length_min: int = 8
    password_length_max: int = 1024
    password_strength_score_min: int = 2  # zxcvbn's 0..4

    # Login throttling and lockout.
    login_delay_after_failures: int = 3  # growing delays start after this many failures
    login_failures_max: int = 10  # consecutive failures that lock the account
    login_lockout_seconds: int = 60 * 60
    address_failures_max: int = 100  # failed logins from one address per window
    address_window_seconds: int = 60 * 60

    # One-time codes (sign-up verification, reset, step-up).
    code_ttl_seconds: int = 600
    code_attempts_max: int = 5
    code_resend_interval_seconds: int = 60

    # Sessions and tokens.
    web_session_idle_seconds: int = 30 * 60
    web_session_lifetime_seconds: int = 12 * 60 * 60
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 60 * 60
    session_touch_interval_seconds: int = 60
    # Web cookies are Secure; on plain-HTTP localhost only (the embedded default), the
    # flag can be dropped so a browser sends them. Never allowed in production.
    cookie_insecure_on_localhost: bool = True

    # Sensitive actions (changing credentials, 2FA) need a password or TOTP this recent.
    step_up_max_age_seconds: int = 5 * 60
    # Which actions need that fresh confirmation (names used by the routes).
    step_up_actions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "change_password",
            "change_contact",
            "two_factor",
            "add_funding_source",
            "large_transfer",
        ]
    )
    totp_issuer: str = "purse"

    # Database behaviour.
    sqlite_busy_timeout_seconds: float = 30.0
    db_retry_count_max: int = 8
    db_pool_size: int = 10

    # Ledger limits.
    transfer_batch_size_max: int = 8190
    transfer_group_size_max: int = 64
    hold_timeout_seconds_max: int = 60 * 60 * 24 * 30
    idempotency_key_retention_seconds: int = 60 * 60 * 48
    idempotency_key_length_max: int = 255
    # How long an overdue hold may wait for the expiry job before verify reports it.
    hold_expiry_grace_seconds: int = 300

    # The wallet: which assets users can hold, limits per KYC level (JSON, see
    # DEFAULT_WALLET_LIMITS), and the calendar that days and months are counted in.
    wallet_assets: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["CNY", "USD", "EUR", "HKD", "JPY"]
    )
    wallet_limits: dict[str, dict[str, dict[str, str]]] = Field(
        default_factory=lambda: DEFAULT_WALLET_LIMITS
    )
    timezone: str = "UTC"
    note_length_max: int = 140
    activity_page_size_max: int = 100
    money_request_ttl_seconds: int = 7 * 24 * 60 * 60
    # Currency conversion: the spread on the operator's mid rate goes to FX revenue.
    fx_spread_bps: int = 50
    fx_quote_ttl_seconds: int = 60
    # Funding providers: a withdrawal's hold lasts until the provider answers, at most this.
    withdrawal_hold_seconds: int = 7 * 24 * 60 * 60
    # After this long without an answer, ask the provider, doubling the wait after each try
    # (at most an hour); give up after the last attempt (about a day with these values).
    provider_follow_up_seconds: int = 30
    provider_attempts_max: int = 30
    # The built-in simulator settles this long after a charge or payout is accepted.
    simulator_settle_seconds: float = 3.0

    # Background jobs.
    worker_interval_seconds: float = 1.0
    worker_batch_size_max: int = 500

    # Notifications. Email goes out over SMTP when ``smtp_url`` is set
    # ("smtp://host:port"; "smtps://" for TLS, "smtp+starttls://" to upgrade); otherwise
    # (the embedded default) messages are only shown by the development mailbox. SMS
    # needs a carrier adapter; without one, the same.
    smtp_url: str | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "purse <no-reply@purse.localhost>"
    smtp_timeout_seconds: float = 5.0
    # A claimed message is the claimer's for this long; after it, another worker may send it.
    # Short, because a worker that dies leaves its batch waiting this long; a relay starts
    # no send later than 2 SMTP timeouts before its lease ends (so it cannot overrun it).
    outbox_lease_seconds: int = 20
    outbox_batch_size: int = 100
    outbox_attempts_max: int = 8  # then it is given up (and stays visible to operators)

    # HTTP.
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme, _, rest = value.partition("://")
        if scheme not in ("smtp", "smtps", "smtp+starttls") or not rest.strip("/"):
            raise ValueError("must look like smtp://host:port (or smtps://, smtp+starttls://)")
        return value

    @field_validator("custom_assets", mode="before")
    @classmethod
    def _parse_custom_assets(cls, value: object) -> object:
        if isinstance(value, str):
            pairs: dict[str, int] = {}
            for item in filter(None, (part.strip() for part in value.split(","))):
                code, _, scale = item.partition(":")
                if not scale.strip().isdigit():
                    raise ValueError(f"custom asset {item!r} must be written CODE:SCALE")
                pairs[code.strip().upper()] = int(scale)
            return pairs
        return value

    @field_validator("step_up_actions", mode="before")
    @classmethod
    def _parse_step_up_actions(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("wallet_assets", mode="before")
    @classmethod
    def _parse_wallet_assets(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().upper() for item in value.split(",") if item.strip()]
        return value

    @field_validator("wallet_limits")
    @classmethod
    def _check_wallet_limits(
        cls, value: dict[str, dict[str, dict[str, str]]]
    ) -> dict[str, dict[str, dict[str, str]]]:
        for level, assets in value.items():
            if not level.isdigit():
                raise ValueError(f"wallet limit level {level!r} must be a KYC level number")
            for asset, limits in assets.items():
                if set(limits) != set(LIMIT_PERIODS):
                    raise ValueError(f"wallet limits of {asset} need exactly {LIMIT_PERIODS}")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _parse_encryption_keys(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = (item.strip().partition(":") for item in value.split(",") if item.strip())
            return {key_id.strip(): key.strip() for key_id, _, key in pairs}
        return value

    @field_validator("custom_assets")
    @classmethod
    def _check_custom_assets(cls, value: dict[str, int]) -> dict[str, int]:
        for code, scale in value.items():
            if not (code.isascii() and code.isalnum() and 2 <= len(code) <= 12):
                raise ValueError(f"custom asset code {code!r} must be 2-12 letters or digits")
            if not 0 <= scale <= 18:
                raise ValueError(f"custom asset {code} scale must be between 0 and 18")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Settings:
        if self.outbox_lease_seconds <= 2 * self.smtp_timeout_seconds:
            raise ValueError(
                "PURSE_OUTBOX_LEASE_SECONDS must be more than twice PURSE_SMTP_TIMEOUT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.env is Environment.production:
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if self.cookie_insecure_on_localhost:
                self.cookie_insecure_on_localhost = False
            if len(key) < SECRET_KEY_MIN_LENGTH or key.lower() in {"changeme", "secret"}:
                raise ValueError(
                    "PURSE_SECRET_KEY must be set to a random value of at least "
                    f"{SECRET_KEY_MIN_LENGTH} characters when PURSE_ENV=production"
                )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The file behind a SQLite URL, or None for PostgreSQL or an in-memory DB."""
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        if not path or path == ":memory:":
            return None
        return Path(path)

    def resolved_secret_key(self) -> str:
        """The secret key; generated and stored beside the embedded DB on first use.

        Outside production a missing key is created once and kept in a file next to
        the database, so sessions and tokens survive restarts of the embedded default.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        db_path = self.sqlite_path()
        key_path = (db_path.parent if db_path else Path.cwd()) / (
            (db_path.name if db_path else "purse") + ".secret"
        )
        if key_path.exists():
            key = key_path.read_text(encoding="utf-8").strip()
        else:
            key = secrets.token_urlsafe(48)
            key_path.parent.mkdir(parents=True, exist_ok=True)
            key_path.touch(mode=0o600)
            key_path.write_text(key + "\n", encoding="utf-8")
            warnings.warn(
                f"PURSE_SECRET_KEY is not set; generated one and stored it in {key_path}",
                SecretKeyWarning,
                stacklevel=2,
            )
        self.secret_key = SecretStr(key)
        return key
