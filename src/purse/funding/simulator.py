"""A card processor and bank in a box, for the demo and the tests.

It behaves like the real thing, chosen by the last four digits of the card or
account number (like processors' test cards):

======  ==============================================================
last 4  what happens
======  ==============================================================
9995    accepted, then declined later: not enough money at the bank
0069    declined at once: the card has expired
0002    declined at once: do not honour
0408    the call times out, but the payment went through; success later
0259    accepted; the success callback arrives twice
3220    accepted; the bank takes an hour to settle (a slow payout)
other   accepted; succeeds ``settle_seconds`` later
======  ==============================================================

Its books live in ``funding_simulator_payments``, written in transactions of its
own: purse must call it outside purse's own transactions, as it would a bank
across the network. Callbacks are delivered by :meth:`Simulator.settle_due`
(a worker job) to the ``deliver`` function purse gives it; they are signed, so
the HTTP callback route can check them like a real provider's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from purse.db import Database, RetryTransaction
from purse.funding.errors import ProviderEventInvalid, ProviderTimeout
from purse.funding.models import SimulatedPayment
from purse.funding.provider import (
    Answer,
    AnswerStatus,
    BankAccountDetails,
    CardDetails,
    Event,
    Instrument,
)
from purse.funding.rules import (
    card_brand,
    check_expiry,
    normalize_account_number,
    normalize_card_number,
)
from purse.i18n import N_
from purse.models import utc_now

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "simulator-signature"
SIGNATURE_TOLERANCE_SECONDS = 300

# last four digits -> scenario
SCENARIOS = {
    "9995": "insufficient_funds",
    "0069": "expired",
    "0002": "do_not_honour",
    "0408": "timeout",
    "0259": "duplicate",
    "3220": "slow",
}
SLOW_SETTLE_SECONDS = 3600
_SYNC_DECLINES = {"expired": "card_expired", "do_not_honour": "bank_declined"}
_LATE_DECLINES = {"insufficient_funds": "bank_insufficient_funds"}
TEST_CARDS = {
    "4242424242424242": N_("succeeds"),
    "4000000000009995": N_("declined later: not enough money at the bank"),
    "4000000000000069": N_("declined: card expired"),
    "4000000000000002": N_("declined: do not honour"),
    "4000000000000408": N_("times out, then succeeds late"),
    "4000000000000259": N_("succeeds; the bank's callback arrives twice"),
    "4000000000003220": N_("succeeds after an hour"),
}


def scenario_of(token: str) -> str:
    prefix, _, rest = token.partition(".")
    return rest.partition(".")[0] if prefix == "sim" and rest else "succeeds"


class Simulator:
    name = "simulator"

    def __init__(
        self,
        database: Database,
        *,
        secret: bytes,
        settle_seconds: float = 3.0,
        deliver: Callable[[Event], object] | None = None,
    ) -> None:
        self.database = database
        self.secret = secret
        self.settle_seconds = settle_seconds
        self.deliver = deliver

    # Tokens -----------------------------------------------------------------------------

    def _token(self, last4: str) -> str:
        # "sim.<scenario>.<random>": the simulator's bank reads the scenario back from it.
        return f"sim.{SCENARIOS.get(last4, 'succeeds')}.{secrets.token_urlsafe(12)}"

    def tokenize_card(self, card: CardDetails) -> Instrument:
        digits = normalize_card_number(card.number)
        month, year = check_expiry(
            card.expiry_month, card.expiry_year, today=datetime.now(UTC).date()
        )
        return Instrument(
            token=self._token(digits[-4:]),
            brand=card_brand(digits),
            last4=digits[-4:],
            expiry_month=month,
            expiry_year=year,
        )

    def tokenize_bank_account(self, account: BankAccountDetails) -> Instrument:
        digits = normalize_account_number(account.account_number)
        brand = " ".join(account.bank_name.split())[:48] or "Bank"
        return Instrument(token=self._token(digits[-4:]), brand=brand, last4=digits[-4:])

    # Payments ---------------------------------------------------------------------------

    def charge(self, *, token: str, asset: str, amount_minor: int, reference: str) -> Answer:
        return self._submit("charge", token, asset, amount_minor, reference)

    def payout(self, *, token: str, asset: str, amount_minor: int, reference: str) -> Answer:
        return self._submit("payout", token, asset, amount_minor, reference)

    def _submit(
        self, kind: str, token: str, asset: str, amount_minor: int, reference: str
    ) -> Answer:
        scenario = scenario_of(token)

        def use_case(session: Session) -> tuple[SimulatedPayment, bool]:
            existing = session.scalars(
                select(SimulatedPayment).where(SimulatedPayment.reference == reference)
            ).first()
            if existing is not None:
                return existing, False  # the reference is the idempotency key
            now = utc_now()
            decline = _SYNC_DECLINES.get(scenario)
            delay = self.settle_seconds * (3 if scenario == "timeout" else 1)
            if scenario == "slow":
                delay = max(delay, SLOW_SETTLE_SECONDS)
            payment = SimulatedPayment(
                reference=reference,
                provider_reference="simpay_" + secrets.token_hex(8),
                kind=kind,
                token=token,
                asset=asset,
                amount_minor=amount_minor,
                status="declined" if decline else "accepted",
                decline_code=decline,
                settle_at=now + timedelta(seconds=delay),
                deliveries_due=0 if decline else (2 if scenario == "duplicate" else 1),
                created_at=now,
            )
            session.add(payment)
            try:
                session.flush()
            except IntegrityError as error:
                raise RetryTransaction() from error
            return payment, True

        payment, created = self.database.run(use_case)
        if created and scenario == "timeout":
            raise ProviderTimeout()  # the bank has it, but its answer never arrives
        return _answer(payment)

    def status(self, *, reference: str) -> Answer:
        payment = self.database.run(
            lambda session: session.scalars(
                select(SimulatedPayment).where(SimulatedPayment.reference == reference)
            ).first(),
            write=False,
        )
        return _answer(payment) if payment is not None else Answer(status=AnswerStatus.unknown)

    def settle_due(self, *, now: datetime | None = None, limit: int = 100) -> int:
        """Settle what is due and send its callbacks; returns how many callbacks were sent.

        Settled in one transaction, delivered after it commits: a crash in between
        loses the callback, as with a real provider, and purse's follow-up job asks
        ``status`` instead.
        """

        def claim(session: Session) -> list[Event]:
            moment = now or utc_now()
            query = (
                select(SimulatedPayment)
                .where(SimulatedPayment.deliveries_due > 0, SimulatedPayment.settle_at <= moment)
                .order_by(SimulatedPayment.settle_at, SimulatedPayment.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name != "sqlite":
                query = query.with_for_update(skip_locked=True)
            events = []
            for payment in session.scalars(query):
                if payment.status == "accepted":
                    late = _LATE_DECLINES.get(scenario_of(payment.token))
                    payment.status = "declined" if late else "succeeded"
                    payment.decline_code = late
                payment.deliveries_due -= 1
                # A duplicate callback follows a little later, as retried webhooks do.
                payment.settle_at = moment + timedelta(seconds=max(0.5, self.settle_seconds / 2))
                events.append(_event(payment))
            return events

        events = self.database.run(claim)
        for event in events:
            if self.deliver is None:
                continue
            try:
                self.deliver(event)
            except Exception as error:  # the provider does not care why a callback failed
                log.warning(
                    "simulator.callback_failed",
                    reference=event.reference,
                    error_type=type(error).__name__,
                )
        return len(events)

    # Callbacks over HTTP ----------------------------------------------------------------

    def sign(self, event: Event, *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """The headers and body the simulator would POST for ``event``."""
        body = json.dumps(
            {
                "id": event.event_id,
                "reference": event.reference,
                "provider_reference": event.provider_reference,
                "status": str(event.status),
                "decline_code": event.decline_code,
            },
            sort_keys=True,
        ).encode()
        moment = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(self.secret, f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"t={moment},v1={digest}"}, body

    def parse_event(self, *, headers: Mapping[str, str], body: bytes) -> Event:
        signature = headers.get(SIGNATURE_HEADER, "")
        parts = dict(item.split("=", 1) for item in signature.split(",") if "=" in item)
        try:
            moment = int(parts.get("t", ""))
        except ValueError:
            raise ProviderEventInvalid() from None
        expected = hmac.new(self.secret, f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise ProviderEventInvalid()
        if abs(time.time() - moment) > SIGNATURE_TOLERANCE_SECONDS:
            raise ProviderEventInvalid()
        try:
            data = json.loads(body)
            status = AnswerStatus(data["status"])
            if status not in (AnswerStatus.succeeded, AnswerStatus.declined):
                raise ValueError(status)
            return Event(
                event_id=str(data["id"]),
                reference=str(data["reference"]),
                provider_reference=str(data["provider_reference"]),
                status=status,
                decline_code=data.get("decline_code"),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderEventInvalid() from error


def _answer(payment: SimulatedPayment) -> Answer:
    return Answer(
        status=AnswerStatus(payment.status),
        provider_reference=payment.provider_reference,
        decline_code=payment.decline_code,
    )


def _event(payment: SimulatedPayment) -> Event:
    return Event(
        event_id="evt_" + payment.provider_reference,
        reference=payment.reference,
        provider_reference=payment.provider_reference,
        status=AnswerStatus(payment.status),
        decline_code=payment.decline_code,
    )
