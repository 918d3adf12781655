"""Merchant tables.

* ``merchants``: a business that takes payments, with its display name in English
  and Chinese and the initial shown as its logo.
* ``merchant_members``: who works for a merchant, and as what (owner, developer,
  support, viewer). Membership, not a user's role, decides what a person may do
  for a merchant; a person may work for several.
* ``merchant_api_keys``: a merchant's server authenticates with a secret key
  (``sk_test_...`` or ``sk_live_...``). The secret is shown once, when the key is
  made, and stored only as a keyed hash (``secret_lookup``, HMAC with purse's
  lookup key), so a copy of the database does not hold a usable key. A key has a
  mode (test keys never touch live money), scopes, a name, when it was last used,
  and an end: revoked at once, or, when rolled, after an overlap in which the old
  and the new key both work.
* ``merchant_payments``: a payment a merchant's server asked for (amount, description,
  its order reference, metadata, how it is captured) and where it stands: who approved
  it, the hold on their wallet and until when, what was captured and refunded.
* ``merchant_payment_events``: each payment's timeline (created, authorized, captured,
  voided, expired, refunded), who did it, and the idempotency key of the merchant's
  request that did it. A refund is an event with its own reference.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from purse.models import Base, BigId, UtcDateTime


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name_en: Mapped[str] = mapped_column(String(80))
    name_zh: Mapped[str] = mapped_column(String(80))
    logo_initial: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # "No charge without fulfilment": a capture must cite what was shipped or delivered.
    capture_requires_fulfilment: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (CheckConstraint("status IN ('active', 'closed')", name="status"),)


class MerchantMember(Base):
    __tablename__ = "merchant_members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("merchant_id", "user_id"),
        CheckConstraint("role IN ('owner', 'developer', 'support', 'viewer')", name="role"),
    )


class MerchantApiKey(Base):
    __tablename__ = "merchant_api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))  # space-separated, sorted
    secret_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("identity_users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The key stops working at this instant: at once when revoked, after the overlap
    # when rolled (``rolled_to_id`` is then the key that replaced it).
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rolled_to_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_api_keys.id"))

    __table_args__ = (
        CheckConstraint("mode IN ('test', 'live')", name="mode"),
        Index("ix_merchant_api_keys_merchant", "merchant_id", "created_at"),
    )


class MerchantPayment(Base):
    """A payment a merchant asked for, which its customer approves (or not).

    Made by the merchant's server with a key (``created_by_key_id``) in that key's mode;
    ``(merchant_id, mode, idempotency_key)`` is unique, and ``fingerprint`` tells a retry
    from another request under the same key.
    """

    __tablename__ = "merchant_payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(8))
    asset: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(200))
    order_reference: Mapped[str | None] = mapped_column(String(128))
    metadata_json: Mapped[str] = mapped_column(Text)
    capture_method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    approve_by: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by_key_id: Mapped[int] = mapped_column(ForeignKey("merchant_api_keys.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set when the customer approves it.
    customer_user_id: Mapped[int | None] = mapped_column(ForeignKey("identity_users.id"))
    # The customer's record of it, in their activity (live payments only).
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    authorized_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The hold on the customer's wallet (manual capture) and when it is released.
    hold_transfer_id: Mapped[int | None] = mapped_column(BigInteger)
    authorized_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The posted transfer that took the money (the capture): refunds reverse it.
    charge_transfer_id: Mapped[int | None] = mapped_column(BigInteger)
    captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    captured_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fulfilment_reference: Mapped[str | None] = mapped_column(String(128))
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # When it stopped holding money without a capture (voided or expired).
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("merchant_id", "mode", "idempotency_key"),
        CheckConstraint("mode IN ('test', 'live')", name="mode"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        # Never more captured than authorized, never more refunded than captured.
        CheckConstraint(
            "captured_minor >= 0 AND captured_minor <= amount_minor", name="captured_bounded"
        ),
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= captured_minor", name="refunded_bounded"
        ),
        CheckConstraint("capture_method IN ('automatic', 'manual')", name="capture_method"),
        CheckConstraint(
            "status IN ('requires_approval', 'authorized', 'captured', 'voided', 'expired')",
            name="status",
        ),
        # A merchant's payments in one mode, newest first (the dashboard, the API's list).
        Index("ix_merchant_payments_merchant", "merchant_id", "mode", "id"),
        # Payments waiting for approval past their window (the expiry job).
        Index("ix_merchant_payments_due", "status", "approve_by"),
        # Authorizations past their end (the job that marks them expired).
        Index("ix_merchant_payments_authorized", "status", "authorized_until"),
    )


PAYMENT_EVENTS = ("created", "authorized", "captured", "voided", "expired", "refunded")


class MerchantPaymentEvent(Base):
    """One step of a payment, by whom, and (for a merchant's request) under which key.

    ``(merchant_id, mode, idempotency_key)`` is unique: a capture, void or refund sent
    again with its key finds its event and answers as the first time did.
    """

    __tablename__ = "merchant_payment_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("merchant_payments.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(8))
    event: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    # A refund's own reference ("re_..."), its reason, and the customer's record of it.
    reference: Mapped[str | None] = mapped_column(String(32), unique=True)
    reason: Mapped[str | None] = mapped_column(String(32))
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    fulfilment_reference: Mapped[str | None] = mapped_column(String(128))
    transfer_id: Mapped[int | None] = mapped_column(BigInteger)
    # Who did it: "api_key" (id), "user" (a member of staff or the customer), "system".
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("merchant_id", "mode", "idempotency_key"),
        CheckConstraint(
            "event IN ('created', 'authorized', 'captured', 'voided', 'expired', 'refunded')",
            name="event",
        ),
        CheckConstraint("mode IN ('test', 'live')", name="mode"),
        Index("ix_merchant_payment_events_payment", "payment_id", "id"),
    )


WEBHOOK_EVENT_TYPES = (
    "payment.authorized",
    "payment.captured",
    "payment.voided",
    "payment.expired",
    "payment.refunded",
    "payout.paid",
    "payout.failed",
)


class WebhookEndpoint(Base):
    """Where a merchant wants to hear about its payments, in one mode.

    The signing secret (``whsec_...``) is kept encrypted, since purse must sign with it;
    after a rotation the previous one signs too, until ``previous_secret_until``.
    """

    __tablename__ = "merchant_webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    event_types: Mapped[str] = mapped_column(String(512))  # space-separated, sorted
    status: Mapped[str] = mapped_column(String(16))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        CheckConstraint("mode IN ('test', 'live')", name="mode"),
        CheckConstraint("status IN ('enabled', 'disabled')", name="status"),
        Index("ix_merchant_webhook_endpoints_merchant", "merchant_id", "mode", "status"),
    )


class WebhookEvent(Base):
    """One event about a merchant's payment, written in the transaction that made it.

    ``message_id`` is the ``webhook-id`` of every delivery of it, first or retried; the
    body is kept as sent, so every attempt signs and sends the same bytes.
    """

    __tablename__ = "merchant_webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(8))
    event_type: Mapped[str] = mapped_column(String(32))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_payments.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_merchant_webhook_events_merchant", "merchant_id", "mode", "id"),)


class WebhookDelivery(Base):
    """One event on its way to one endpoint: retried with back-off until it is answered
    with a 2xx, or the schedule runs out."""

    __tablename__ = "merchant_webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("merchant_webhook_events.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("merchant_webhook_endpoints.id"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the worker should next try; while an attempt is in flight, when its lease ends.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        Index("ix_merchant_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_merchant_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )


class WebhookAttempt(Base):
    """The delivery log: each request sent, when, and what came back (a bounded part)."""

    __tablename__ = "merchant_webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("merchant_webhook_deliveries.id"))
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The webhook-timestamp header sent (with the event's id and body, the whole request).
    timestamp: Mapped[int] = mapped_column(BigInteger)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_merchant_webhook_attempts_delivery", "delivery_id", "id"),)
