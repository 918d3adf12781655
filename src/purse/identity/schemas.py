"""Request and response bodies of the identity API.

A closed set of values is a ``StrEnum``, so the OpenAPI document names it once
(``ContactChannel``) and a generated client gets one type for it, not an inline
list of strings per field.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from purse.devices import Device
from purse.i18n import SUPPORTED_LOCALES
from purse.identity.models import ROLES
from purse.identity.sessions import SessionRead as SessionView


class Locale(StrEnum):
    en = "en"
    zh_cn = "zh-CN"


class ContactChannel(StrEnum):
    """Where a code is sent: a text message to the phone, or an email."""

    sms = "sms"
    email = "email"


class Role(StrEnum):
    user = "user"
    merchant_member = "merchant_member"
    agent = "agent"
    senior_agent = "senior_agent"
    admin = "admin"


class SignUpStatus(StrEnum):
    verification_sent = "verification_sent"


class TokenType(StrEnum):
    bearer = "bearer"


assert {locale.value for locale in Locale} == set(SUPPORTED_LOCALES)
assert {role.value for role in Role} == set(ROLES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # no mass assignment: unknown fields are refused


class SignUpCreate(_Strict):
    handle: str = Field(max_length=64, examples=["wang_wei"])
    display_name: str = Field(max_length=200, examples=["Wang Wei"])
    password: str = Field(max_length=4096)
    locale: Locale = Locale.zh_cn
    phone: str | None = Field(default=None, max_length=32, examples=["+8613800138000"])
    email: str | None = Field(default=None, max_length=320, examples=["wang.wei@example.com"])


class SignUpRead(BaseModel):
    status: SignUpStatus
    channels: list[ContactChannel] = Field(description="Where verification codes were sent")


class VerifyCreate(_Strict):
    identifier: str = Field(
        max_length=320, description="The phone number or email the code was sent to"
    )
    channel: ContactChannel
    code: str = Field(min_length=1, max_length=12)


class CodeRequest(_Strict):
    identifier: str = Field(max_length=320)
    channel: ContactChannel


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
    token_type: TokenType = TokenType.bearer
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


class DeviceRead(BaseModel):
    """A device's names as its User-Agent gives them (the same in every language)."""

    browser: str = Field(examples=["Chrome Mobile"])
    system: str = Field(examples=["Android"])
    model: str = Field(examples=["Pixel 8"])


class SessionRead(BaseModel):
    id: int
    kind: str
    device: str = Field(
        description="The device in the caller's language", examples=["Chrome on Android (Pixel 8)"]
    )
    device_names: DeviceRead
    address: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool

    @classmethod
    def of(cls, row: SessionView, locale: str) -> SessionRead:
        device = Device.parse(row.device)
        return cls(
            id=row.id,
            kind=row.kind,
            device=device.display(locale),
            device_names=DeviceRead(**device.as_json()),
            address=row.address,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            current=row.current,
        )


class EndedRead(BaseModel):
    ended: int


class PasswordResetRequest(_Strict):
    identifier: str = Field(max_length=320, description="A verified phone number or email")
    channel: ContactChannel


class PasswordResetConfirm(_Strict):
    identifier: str = Field(max_length=320)
    channel: ContactChannel
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
    role: Role


class PasswordChange(_Strict):
    new_password: str = Field(max_length=4096)


class ContactChange(_Strict):
    channel: ContactChannel
    value: str = Field(max_length=320, examples=["+8613900139000", "new@example.com"])


class ContactConfirm(_Strict):
    channel: ContactChannel
    code: str = Field(min_length=1, max_length=12)
