"""Request and response bodies of the merchants API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from purse.merchants.rules import (
    DESCRIPTION_LENGTH_MAX,
    FULFILMENT_REFERENCE_LENGTH_MAX,
    KEY_NAME_LENGTH_MAX,
    METADATA_KEYS_MAX,
    NAME_LENGTH_MAX,
    ORDER_REFERENCE_LENGTH_MAX,
    ROLL_OVERLAP_SECONDS_MAX,
    CaptureMethod,
    KeyMode,
    KeyScope,
    MemberRole,
    PaymentStatus,
    RefundReason,
)
from purse.operations.schemas import AmountIn, MerchantNameRead, Money, Strict


class MerchantCreate(Strict):
    name_en: str = Field(max_length=4 * NAME_LENGTH_MAX, examples=["Lotus Coffee"])
    name_zh: str = Field(max_length=4 * NAME_LENGTH_MAX, examples=["莲花咖啡"])


class MerchantRead(BaseModel):
    id: int
    name_en: str
    name_zh: str
    logo_initial: str = Field(description="Shown where a logo would be")
    status: str
    created_at: datetime
    role: MemberRole = Field(description="The caller's role at this merchant")
    capture_requires_fulfilment: bool = Field(
        description="No charge without fulfilment: a capture must cite a fulfilment reference"
    )


class MerchantUpdate(Strict):
    capture_requires_fulfilment: bool = Field(
        description="No charge without fulfilment: a capture must cite a fulfilment reference"
    )


class ApiKeyCreate(Strict):
    name: str = Field(max_length=4 * KEY_NAME_LENGTH_MAX, examples=["Checkout server"])
    mode: KeyMode
    scopes: list[KeyScope] = Field(min_length=1, max_length=len(KeyScope))


class ApiKeyRoll(Strict):
    overlap_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=ROLL_OVERLAP_SECONDS_MAX,
        description="How long the old key keeps working beside the new one (0: not at all)",
    )


class ApiKeyRead(BaseModel):
    id: int
    name: str
    mode: KeyMode
    scopes: list[KeyScope]
    last4: str = Field(description="The secret's last four characters, to tell keys apart")
    created_at: datetime
    last_used_at: datetime | None
    ends_at: datetime | None = Field(description="When it stops (or stopped) working")
    rolled_to_id: int | None = Field(description="The key that replaced it, if it was rolled")
    works: bool = Field(description="Whether the key works now")


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="The secret key. Shown this once: store it now")


class KeyMerchantRead(BaseModel):
    """What a merchant's server sees of itself with its key."""

    merchant_id: int
    name_en: str
    name_zh: str
    mode: KeyMode
    scopes: list[KeyScope]


class MemberCreate(Strict):
    handle: str = Field(max_length=64, examples=["li_na"], description="The person's handle")
    role: MemberRole


class MemberUpdate(Strict):
    role: MemberRole


class MemberRead(BaseModel):
    user_id: int
    handle: str
    display_name: str
    role: MemberRole
    created_at: datetime


class PaymentCreate(Strict):
    amount: AmountIn
    description: str = Field(
        max_length=4 * DESCRIPTION_LENGTH_MAX,
        examples=["1 flat white"],
        description="What the customer pays for, shown at checkout and in their activity",
    )
    order_reference: str | None = Field(
        default=None,
        max_length=4 * ORDER_REFERENCE_LENGTH_MAX,
        examples=["ORDER-1042"],
        description="The merchant's own order number, shown to the customer",
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        max_length=4 * METADATA_KEYS_MAX,
        description="The merchant's own data: at most 20 keys, each value at most 500 characters",
    )
    capture_method: CaptureMethod = Field(
        default=CaptureMethod.manual,
        description="manual: held until captured; automatic: taken when approved",
    )
    approve_within_seconds: int = Field(
        default=1800, ge=60, le=86400, description="How long the customer has to approve it"
    )


class PaymentRead(BaseModel):
    reference: str = Field(examples=["pay_7KQ2M9X4T6WZ3HRA"])
    mode: KeyMode
    status: PaymentStatus
    amount: Money
    description: str
    order_reference: str | None
    metadata: dict[str, str]
    capture_method: CaptureMethod
    approve_by: datetime = Field(description="When the customer's chance to approve ends")
    created_at: datetime
    authorized_at: datetime | None = Field(description="When the customer approved it")
    authorized_until: datetime | None = Field(
        description="Until when the money is held uncaptured; then it is released"
    )
    captured: Money = Field(description="What was taken")
    captured_at: datetime | None
    fulfilment_reference: str | None = Field(
        description="What was shipped or delivered, as cited by the capture"
    )
    refunded: Money = Field(description="What was given back, in all")
    released_at: datetime | None = Field(description="When the hold was voided or ran out")


class PaymentCapture(Strict):
    amount: AmountIn | None = Field(
        default=None, description="What to take: at most the amount authorized (default: all)"
    )
    fulfilment_reference: str | None = Field(
        default=None,
        max_length=4 * FULFILMENT_REFERENCE_LENGTH_MAX,
        examples=["SHIP-88213"],
        description="The shipment or service delivered; required in 'no charge without "
        "fulfilment' mode, and shown to the customer",
    )


class RefundCreate(Strict):
    amount: AmountIn | None = Field(
        default=None, description="What to give back (default: all not refunded yet)"
    )
    reason: RefundReason = RefundReason.requested_by_customer


class RefundRead(BaseModel):
    reference: str = Field(examples=["re_7KQ2M9X4T6WZ3HRA"])
    payment_reference: str
    amount: Money
    reason: RefundReason
    status: str = Field(
        examples=["succeeded"], description="Always succeeded: the money is back at once"
    )
    created_at: datetime


class CheckoutRead(BaseModel):
    """A payment as its customer sees it at checkout and after."""

    reference: str
    test_mode: bool = Field(description="Test money only: no real money moves")
    status: PaymentStatus
    merchant: MerchantNameRead
    amount: Money
    description: str
    order_reference: str | None
    capture_method: CaptureMethod
    approve_by: datetime
    yours: bool = Field(description="Whether the caller approved it")
    authorized_until: datetime | None
    captured: Money
    refunded: Money
    fulfilment_reference: str | None


class PaymentList(BaseModel):
    items: list[PaymentRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class WebhookEndpointCreate(Strict):
    url: str = Field(max_length=2048, examples=["https://shop.example.com/purse/webhooks"])
    mode: KeyMode = Field(description="Events of test or of live payments")
    event_types: list[str] = Field(
        max_length=16, examples=[["payment.authorized", "payment.captured", "payment.refunded"]]
    )
    description: str | None = Field(default=None, max_length=800)


class WebhookEndpointRead(BaseModel):
    id: int
    mode: KeyMode
    url: str
    description: str | None
    event_types: list[str]
    status: str = Field(examples=["enabled", "disabled"])
    disabled_reason: str | None = Field(
        description="by_merchant, or failing: a delivery failed through all its retries"
    )
    previous_secret_until: datetime | None = Field(
        description="After a rotation: until when the previous secret signs too"
    )
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(
        description="The signing secret (whsec_...): shown this once, store it now",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookSecretRotate(Strict):
    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the old secret keeps signing beside the new one",
    )


class WebhookAttemptRead(BaseModel):
    attempted_at: datetime
    status_code: int | None
    response_excerpt: str | None = Field(description="The start of the answer (at most 1 KB)")
    error: str | None = Field(examples=["timeout", "ConnectError"])
    duration_ms: int


class WebhookDeliveryRead(BaseModel):
    id: int
    endpoint_id: int
    message_id: str = Field(description="The webhook-id header: the same on every attempt")
    event_type: str
    body: str = Field(description="The request body, exactly as sent")
    status: str = Field(examples=["pending", "succeeded", "failed"])
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime
    log: list[WebhookAttemptRead]


class SettlementBalanceRead(BaseModel):
    """A merchant's settlement balance in one currency and mode."""

    mode: KeyMode
    available: Money = Field(description="Captured, less refunds and payouts: the merchant's")
    held_for_you: Money = Field(
        description="Approved by customers but not captured yet: held on their wallets"
    )
