"""Request and response bodies of the identity API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # no mass assignment: unknown fields are refused


class SignUpCreate(_Strict):
    handle: str = Field(max_length=64, examples=["wang_wei"])
    display_name: str = Field(max_length=200, examples=["Wang Wei"])
    password: str = Field(max_length=4096)
    locale: Literal["en", "zh-CN"] = "zh-CN"
    phone: str | None = Field(default=None, max_length=32, examples=["+8613800138000"])
    email: str | None = Field(default=None, max_length=320, examples=["wang.wei@example.com"])


class SignUpRead(BaseModel):
    status: Literal["verification_sent"]
    channels: list[str]


class VerifyCreate(_Strict):
    identifier: str = Field(
        max_length=320, description="The phone number or email the code was sent to"
    )
    channel: Literal["sms", "email"]
    code: str = Field(min_length=1, max_length=12)


class CodeRequest(_Strict):
    identifier: str = Field(max_length=320)
    channel: Literal["sms", "email"]


class StatusRead(BaseModel):
    status: str


class TokenCreate(_Strict):
    identifier: str = Field(max_length=320, description="Handle, phone number or email")
    password: str = Field(max_length=4096)
    second_factor: str | None = Field(
        default=None, max_length=32, description="Authenticator code or recovery code, if 2FA is on"
    )


class RefreshCreate(_Strict):
    refresh_token: str = Field(max_length=200)


class TokenRead(BaseModel):
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    access_token: str
    expires_at: datetime
    refresh_token: str
    session_id: int


class MeRead(BaseModel):
    id: int
    handle: str
    display_name: str
    locale: str
    role: str
    phone_masked: str | None
    email_masked: str | None
    phone_verified: bool
    email_verified: bool
    two_factor: bool


class SessionRead(BaseModel):
    id: int
    kind: str
    device: str
    address: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool


class EndedRead(BaseModel):
    ended: int


class PasswordResetRequest(_Strict):
    identifier: str = Field(max_length=320, description="A verified phone number or email")
    channel: Literal["sms", "email"]


class PasswordResetConfirm(_Strict):
    identifier: str = Field(max_length=320)
    channel: Literal["sms", "email"]
    code: str = Field(min_length=1, max_length=12)
    new_password: str = Field(max_length=4096)
    second_factor: str | None = Field(default=None, max_length=32)


class StepUpCreate(_Strict):
    password: str = Field(max_length=4096)
    second_factor: str | None = Field(default=None, max_length=32)


class TotpEnrolmentRead(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class TotpConfirm(_Strict):
    code: str = Field(min_length=6, max_length=8)


class RecoveryCodesRead(BaseModel):
    recovery_codes: list[str]


class RoleChange(_Strict):
    role: Literal["user", "merchant_member", "agent", "senior_agent", "admin"]


class PasswordChange(_Strict):
    new_password: str = Field(max_length=4096)


class ContactChange(_Strict):
    channel: Literal["sms", "email"]
    value: str = Field(max_length=320, examples=["+8613900139000", "new@example.com"])


class ContactConfirm(_Strict):
    channel: Literal["sms", "email"]
    code: str = Field(min_length=1, max_length=12)
