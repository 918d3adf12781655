"""Settings from ``PURSE_*`` environment variables and a ``.env`` file.

Every limit is named ``*_max`` (or ``*_seconds``) and lives here, so an operator
can find and change it in one place.
"""

from __future__ import annotations

import difflib
import json
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, NoDecode, SettingsConfigDict

from purse.settings.merchants import MerchantSettings

ENV_PREFIX = "PURSE_"
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


# Settings shown as *** by ``purse settings``, never their value.
SECRET_SETTINGS = frozenset({"secret_key", "smtp_password", "encryption_keys"})

# PURSE_* variables that purse's own tests and scripts read but that are not settings of
# the service; the warning about unknown PURSE_* variables leaves them alone.
NOT_SETTINGS = frozenset(
    {
        "PURSE_TEST_POSTGRES_URL",  # tests: use this PostgreSQL instead of a throwaway one
        "PURSE_TEST_DATABASES",  # tests: which databases to run on (scripts/fast: sqlite)
        "PURSE_RELIABILITY_SIZE",  # tests/reliability, scripts/torture: "full" sizes
        "PURSE_MODEL_EXAMPLES",  # tests/integration/test_ledger_model.py ...
        "PURSE_MODEL_STEPS",
        "PURSE_MODEL_RANDOM",
        "PURSE_MODEL_SHRINK",
    }
)


# From these amounts (major units), money leaving a wallet needs a fresh password
# confirmation: about 150 US dollars' worth; "*" for any other asset.
DEFAULT_LARGE_TRANSFER: dict[str, str] = {
    "CNY": "1000",
    "HKD": "1000",
    "USD": "150",
    "EUR": "150",
    "JPY": "20000",
    "*": "150",
}


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class SecretKeyWarning(UserWarning):
    """A secret key was generated and stored next to the embedded database."""


class Settings(BaseSettings, MerchantSettings):
    """Every setting of purse; each field's description is what ``purse settings`` shows."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Field(
        Environment.development,
        description="development, test or production (production refuses a weak secret key).",
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="The database: sqlite:///path/to/file.db or postgresql://user:pass@host:port/db.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs sessions and tokens; 32+ characters in production. "
        "Unset: generated once into <database file>.secret.",
    )
    custom_assets: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description='Custom assets beside ISO 4217 as CODE:SCALE pairs, e.g. "PTS:0,USDT:6,BTC:8".',
    )
    encryption_keys: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Personal data at rest: id:base64key,... (32-byte keys); every listed key "
        "decrypts. Unset: derived from the secret key.",
    )
    encryption_key_current: str | None = Field(
        None,
        description="The id in PURSE_ENCRYPTION_KEYS that encrypts new data "
        "(unset: the last id in sorted order).",
    )

    # Passwords (argon2id; NIST SP 800-63B: length and a blocklist, no composition rules).
    password_hash_time_cost: int = Field(3, description="argon2id passes over memory.")
    password_hash_memory_cost_kib: int = Field(
        65536, description="argon2id memory per password hash, in KiB."
    )
    password_hash_parallelism: int = Field(1, description="argon2id lanes.")
    password_length_min: int = Field(8, description="Shortest password accepted.")
    password_length_max: int = Field(1024, description="Longest password accepted.")
    password_strength_score_min: int = Field(
        2, description="Weakest zxcvbn score (0..4) a new password may have."
    )

    # Login throttling and lockout.
    login_delay_after_failures: int = Field(
        3, description="Consecutive failed logins after which each attempt waits longer."
    )
    login_failures_max: int = Field(
        10, description="Consecutive failed logins that lock the account."
    )
    login_lockout_seconds: int = Field(
        60 * 60, description="How long a locked account stays locked."
    )
    address_failures_max: int = Field(
        100, description="Failed logins from one address per window; then it must wait."
    )
    address_window_seconds: int = Field(
        60 * 60, description="The window PURSE_ADDRESS_FAILURES_MAX is counted over."
    )
    recipient_lookups_max: int = Field(
        60,
        description="Recipient look-ups (a phone, email or handle turned into a masked name) "
        "one user may make per PURSE_RECIPIENT_LOOKUP_WINDOW_SECONDS.",
    )
    recipient_lookups_per_address_max: int = Field(
        300,
        description="Recipient look-ups from one client address per window (behind a proxy, "
        "let uvicorn read the client's address from its headers, or all users share one).",
    )
    recipient_lookup_window_seconds: int = Field(
        10 * 60, description="The window recipient look-ups are counted over."
    )

    # One-time codes (sign-up verification, reset, step-up).
    code_ttl_seconds: int = Field(600, description="How long a one-time code is valid.")
    code_attempts_max: int = Field(5, description="Wrong tries before a one-time code is refused.")
    code_resend_interval_seconds: int = Field(
        60, description="How long to wait before another code may be sent."
    )

    # Sessions and tokens.
    web_session_idle_seconds: int = Field(
        30 * 60, description="A web session ends after this long without a request."
    )
    web_session_lifetime_seconds: int = Field(
        12 * 60 * 60, description="A web session ends this long after sign-in, active or not."
    )
    access_token_ttl_seconds: int = Field(15 * 60, description="Lifetime of an API access token.")
    refresh_token_ttl_seconds: int = Field(
        30 * 24 * 60 * 60, description="Lifetime of an API refresh token."
    )
    session_touch_interval_seconds: int = Field(
        60, description="How often a session's last-seen time is written (at most)."
    )
    # Web cookies are Secure; on plain-HTTP localhost only (the embedded default), the
    # flag can be dropped so a browser sends them.
    cookie_insecure_on_localhost: bool = Field(
        True,
        description="Drop the Secure cookie flag on plain-HTTP localhost; "
        "always false in production.",
    )

    step_up_max_age_seconds: int = Field(
        5 * 60,
        description="Sensitive actions need a password or TOTP confirmation at most this old.",
    )
    step_up_actions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "change_password",
            "change_contact",
            "two_factor",
            "add_funding_source",
            "large_transfer",
            "manage_api_keys",
        ],
        description="Actions that need that fresh confirmation (names used by the routes).",
    )
    step_up_large_transfer: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_LARGE_TRANSFER),
        description="CODE:AMOUNT pairs (major units; '*' for any other asset): from this amount, "
        "money leaving the wallet (a send, paying a request, a withdrawal) is a large_transfer "
        "and needs a fresh confirmation when PURSE_STEP_UP_ACTIONS lists large_transfer.",
    )

    totp_issuer: str = Field("purse", description="Issuer name shown in authenticator apps.")

    # Database behaviour.
    sqlite_busy_timeout_seconds: float = Field(
        30.0,
        description="How long a SQLite writer waits for the write lock held by another process.",
    )
    db_wait_seconds: float = Field(
        2.0,
        gt=0,
        description="The longest a transaction waits for a pooled connection or, on SQLite, for "
        "its turn to write in this process; then the request is answered 503 database_busy.",
    )
    db_retry_count_max: int = Field(
        8, description="Reruns of a transaction after a serialization failure or deadlock."
    )
    db_group_commit: bool = Field(
        True,
        description="On SQLite, concurrent write transactions share one commit: a committer "
        "runs each in a savepoint of one transaction and answers them after its commit.",
    )
    db_group_commit_size_max: int = Field(
        64, ge=1, le=10_000, description="The most use cases one group commit holds."
    )
    db_pool_size: int = Field(
        10,
        description="Connections each process pools (and as many more under load): keep "
        "processes times twice this within PostgreSQL's max_connections.",
    )

    # Ledger limits, applied through purse.ledger.rules.LedgerLimits.from_settings.
    transfer_batch_size_max: int = Field(
        8190, description="Transfer groups one ledger batch may hold."
    )
    transfer_group_size_max: int = Field(64, description="Transfers one atomic group may hold.")
    hold_timeout_seconds_max: int = Field(
        60 * 60 * 24 * 30, description="The longest a hold may reserve money before it expires."
    )
    idempotency_key_retention_seconds: int = Field(
        60 * 60 * 48, description="How long an idempotency key is kept to replay its result."
    )
    idempotency_key_length_max: int = Field(
        255, description="The longest Idempotency-Key a client may send."
    )
    hold_expiry_grace_seconds: int = Field(
        300,
        description="How long an overdue hold may wait for the expiry job "
        "before purse ledger verify reports it.",
    )
    ledger_checkpoint_grace_seconds: int = Field(
        300,
        ge=0,
        description="How long after a month ends (in PURSE_TIMEZONE) the ledger waits before "
        "writing its balance checkpoints; from then on, transfers dated in that month or "
        "earlier are refused.",
    )

    # The wallet.
    wallet_assets: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["CNY", "USD", "EUR", "HKD", "JPY"],
        description="The assets users can hold, comma-separated.",
    )
    wallet_limits: dict[str, dict[str, dict[str, str]]] = Field(
        default_factory=lambda: DEFAULT_WALLET_LIMITS,
        description='JSON: per KYC level and asset ("*": any other), per_transfer, per_day and '
        "per_month in major units.",
    )
    timezone: str = Field(
        "UTC",
        description="The calendar that daily and monthly limits, statements and pages count in.",
    )
    note_length_max: int = Field(140, description="Longest note on a transfer, in characters.")
    activity_page_size_max: int = Field(100, description="Most items in one page of activity.")
    money_request_ttl_seconds: int = Field(
        7 * 24 * 60 * 60, description="How long a money request stays open."
    )
    fx_spread_bps: int = Field(
        50,
        description="Spread on the operator's mid rate in a conversion quote, in basis points "
        "(it goes to FX revenue).",
    )
    fx_quote_ttl_seconds: int = Field(60, description="How long a conversion quote holds.")
    withdrawal_hold_seconds: int = Field(
        7 * 24 * 60 * 60,
        description="A withdrawal's hold lasts until the provider answers, at most this long.",
    )
    # With the defaults, waits double from 30 s (at most an hour) and the last attempt
    # comes about a day after the first.
    provider_follow_up_seconds: int = Field(
        30,
        description="Ask a silent funding provider again after this long, doubling the wait "
        "after each try (at most an hour).",
    )
    provider_attempts_max: int = Field(
        30, description="Follow-ups with a silent funding provider before giving up."
    )
    simulator_settle_seconds: float = Field(
        3.0,
        description="The built-in provider simulator settles a charge or payout this long "
        "after accepting it.",
    )

    # Background jobs.
    worker_interval_seconds: float = Field(
        1.0, description="Pause between two rounds of the background jobs."
    )
    worker_batch_size_max: int = Field(
        500, description="Most rows a background job handles in one transaction."
    )

    # Notifications. Without an SMTP URL (the embedded default), messages are only shown by
    # the development mailbox. SMS needs a carrier adapter; without one, the same.
    smtp_url: str | None = Field(
        None,
        description="smtp://host:port (smtps:// for TLS, smtp+starttls:// to upgrade); "
        "unset: email stays in the development mailbox.",
    )
    smtp_username: str | None = Field(None, description="SMTP login name, if the server needs one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    mail_from: str = Field(
        "purse <no-reply@purse.localhost>", description="The From address of email purse sends."
    )
    smtp_timeout_seconds: float = Field(
        5.0, description="Timeout of each SMTP connection and command."
    )
    # Short, because a worker that dies leaves its batch waiting this long; a relay starts
    # no send later than 2 SMTP timeouts before its lease ends (so it cannot overrun it).
    outbox_lease_seconds: int = Field(
        20,
        description="A claimed message is its worker's for this long, then another may send it; "
        "more than twice PURSE_SMTP_TIMEOUT_SECONDS.",
    )
    outbox_batch_size: int = Field(100, description="Messages a worker claims at once.")
    outbox_attempts_max: int = Field(
        8, description="Tries before a message is given up (it stays visible to operators)."
    )

    # HTTP.
    host: str = Field("127.0.0.1", description="Address purse serve listens on.")
    port: int = Field(8000, description="Port purse serve listens on.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies whose X-Forwarded-For and X-Forwarded-Proto purse serve believes "
        '(comma-separated addresses or networks, "*" for any).',
    )
    # The largest legitimate body is a form or a JSON document of well under 4 KiB (a transfer
    # with its 140-character note is about 200 bytes): 64 KiB is 16 times that, and 64 KiB per
    # connection stays small even with every allowed connection sending one.
    http_body_bytes_max: int = Field(
        64 * 1024,
        gt=0,
        description="The largest request body accepted (routes may accept less); larger ones "
        "are answered 413 body_too_large before they are read.",
    )
    http_body_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description="A request body must have arrived this long after its head; a slower one "
        "is answered 408 body_too_slow.",
    )
    http_head_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A connection that has not sent a complete request head this long after it "
        "opened (or after its first byte, for later requests) is closed.",
    )
    http_connections_max: int = Field(
        500,
        gt=0,
        description="Connections purse serve keeps open at once; beyond them requests are "
        "answered 503 and their connection closed.",
    )
    # Each request at work is a thread with a database connection: beyond a few per core
    # they only wait for each other (and for the interpreter's lock), so each takes longer.
    # 256 clients on 2 cores, PostgreSQL: with 16 at once an admitted transfer took 0.85 s
    # (p50, its wait in line included) and a client timed out at 2 s; with 8, 0.6 s and none.
    http_requests_max: int = Field(
        8,
        gt=0,
        description="Requests worked on at once by one purse serve; the others wait in line "
        "(PURSE_HTTP_QUEUE_MAX, PURSE_HTTP_QUEUE_SECONDS). Each needs a pooled connection: keep "
        "it well under twice PURSE_DB_POOL_SIZE.",
    )
    http_queue_max: int = Field(
        64,
        ge=0,
        description="Requests that may wait for one of the PURSE_HTTP_REQUESTS_MAX places; more "
        "are answered 503 service_overloaded with Retry-After at once.",
    )
    http_queue_seconds: float = Field(
        0.5,
        ge=0,
        description="The longest a request waits in line; then it is answered 503 "
        "service_overloaded with Retry-After.",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error, critical.")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme, separator, rest = value.strip().partition("://")
        dialect = scheme.partition("+")[0]
        if not separator or dialect not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(
                "expected sqlite:///path/to/file.db or postgresql://user:pass@host:port/db"
            )
        return value.strip()

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

    @property
    def webhooks_reach_private_addresses(self) -> bool:
        if self.merchant_webhook_private_addresses is not None:
            return self.merchant_webhook_private_addresses
        return self.env is not Environment.production

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

    @field_validator("step_up_large_transfer", mode="before")
    @classmethod
    def _parse_large_transfer(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("{"):
                return json.loads(value)
            pairs = (item.strip().partition(":") for item in value.split(",") if item.strip())
            return {code.strip().upper(): amount.strip() for code, _, amount in pairs}
        return value

    @field_validator("step_up_large_transfer")
    @classmethod
    def _check_large_transfer(cls, value: dict[str, str]) -> dict[str, str]:
        for asset, amount in value.items():
            whole, _, fraction = amount.partition(".")
            if not (whole.isdigit() and (fraction.isdigit() or not fraction)):
                raise ValueError(f"large transfer amount of {asset} must be like 1000 or 150.50")
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
    def _authorization_within_hold_limit(self) -> Settings:
        if self.merchant_authorization_seconds > self.hold_timeout_seconds_max:
            raise ValueError(
                "PURSE_MERCHANT_AUTHORIZATION_SECONDS must be at most "
                "PURSE_HOLD_TIMEOUT_SECONDS_MAX"
            )
        return self

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


def setting_variable(name: str) -> str:
    """The environment variable of a setting: ``port`` is read from ``PURSE_PORT``."""
    return ENV_PREFIX + name.upper()


@dataclass(frozen=True)
class SettingShown:
    """One setting as ``purse settings`` shows it; values are JSON values, secrets masked."""

    variable: str
    description: str
    default: Any
    value: Any


def describe_settings(settings: Settings) -> list[SettingShown]:
    """Every setting, in the order of the class, described by its field's description.

    A secret that is set is shown as ``***``, and a password inside a URL as ``***`` too,
    so the list can be pasted into a support request.
    """
    defaults = Settings.model_construct().model_dump(mode="json")
    current = settings.model_dump(mode="json")
    return [
        SettingShown(
            variable=setting_variable(name),
            description=field.description or "",
            default=_masked(name, defaults[name]),
            value=_masked(name, current[name]),
        )
        for name, field in Settings.model_fields.items()
    ]


def _masked(name: str, value: Any) -> Any:
    if name in SECRET_SETTINGS:
        return "***" if value else value
    if name.endswith("_url") and isinstance(value, str):
        parts = urlsplit(value)
        if parts.password is not None:
            userinfo, _, location = parts.netloc.rpartition("@")
            username = userinfo.partition(":")[0]
            return urlunsplit(parts._replace(netloc=f"{username}:***@{location}"))
    return value


def env_text(value: Any) -> str:
    """A setting's value written the way its ``PURSE_*`` variable takes it (see the parsers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        if all(isinstance(item, str | int) for item in value.values()):
            return ",".join(f"{key}:{item}" for key, item in value.items())
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def unknown_variable_warnings(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``PURSE_*`` variable, in ``environ`` or ``.env``, that is no setting.

    pydantic-settings ignores them (``extra="ignore"``), so a misspelled name would leave
    its setting at the default without a word. Names in NOT_SETTINGS are purse's own tests'.
    The closest setting is found by comparing the names without the common prefix, which
    would otherwise make every name look alike.
    """
    settings_by_suffix = {name.upper(): setting_variable(name) for name in Settings.model_fields}
    dotenv = DotEnvSettingsSource(Settings).env_vars  # the files Settings reads, read its way
    warnings_found: list[str] = []
    for source, names in (("", environ), (" in .env", dotenv)):
        for name in sorted({name.upper() for name in names}):
            suffix = name.removeprefix(ENV_PREFIX)
            if suffix == name or suffix in settings_by_suffix or name in NOT_SETTINGS:
                continue
            closest = difflib.get_close_matches(suffix, list(settings_by_suffix), n=1)
            hint = f"; did you mean {settings_by_suffix[closest[0]]}?" if closest else ""
            warnings_found.append(f"{name}{source} is not a purse setting and is ignored{hint}")
    return warnings_found
