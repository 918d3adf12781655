"""The merchants' settings: how long a payment's hold lasts, and how webhooks are sent.

A part of :class:`purse.settings.Settings` (which inherits it), kept apart for length.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode


class MerchantSettings(BaseModel):
    merchant_webhook_retry_seconds: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000],
        description="Waits between a webhook's attempts, comma-separated: after the first "
        "try fails, then after each retry (about a day in all); then the delivery fails.",
    )
    merchant_webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=30, description="How long one webhook request may take."
    )
    merchant_webhook_private_addresses: bool | None = Field(
        None,
        description="Whether webhook URLs may reach loopback, private or link-local "
        "addresses; unset: yes except in production.",
    )
    merchant_authorization_seconds: int = Field(
        7 * 24 * 60 * 60,
        ge=1,
        description="How long a merchant payment's hold lasts uncaptured before it is "
        "released (the authorization window); at most PURSE_HOLD_TIMEOUT_SECONDS_MAX.",
    )

    @field_validator("merchant_webhook_retry_seconds", mode="before")
    @classmethod
    def _parse_retry_seconds(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(item) for item in value.split(",") if item.strip()]
        return value

    @field_validator("merchant_webhook_retry_seconds")
    @classmethod
    def _check_retry_seconds(cls, value: list[int]) -> list[int]:
        if not 1 <= len(value) <= 20 or any(wait < 0 or wait > 86_400 for wait in value):
            raise ValueError("1 to 20 waits, each 0 to 86400 seconds")
        return value
