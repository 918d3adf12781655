"""Operation kinds: each domain registers the kinds of money operation it makes.

The operation record (``operations``) is shared by every domain that moves money
for someone. What differs between a send, a top-up, a merchant payment or a
refund is declared here once, by the domain that owns the kind, so shared code
(limits, activity, spending, the notifications check) asks the registry instead
of listing kinds by name, and a new domain adds its kinds without editing anyone
else's code. The database stores the kind as text; writing an unregistered kind
is refused by :func:`get`, and ``purse ledger verify`` reports stored kinds that
no domain registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class Direction(StrEnum):
    """How an operation reads for one of its parties."""

    incoming = "in"  # money arrives in this party's wallet
    outgoing = "out"  # money leaves it
    exchange = "exchange"  # it changes currency within the wallet


class Party(StrEnum):
    owner = "owner"  # the user whose operation it is (``operations.user_id``)
    counterparty = "counterparty"  # the other user, if any (``counterparty_user_id``)


@dataclass(frozen=True, slots=True)
class MerchantPaymentDetails:
    """The merchant payment behind an operation (a payment, or a refund of one), as its
    customer sees it: who was paid, for what, and what became of the money."""

    merchant_name_en: str
    merchant_name_zh: str
    merchant_initial: str
    payment_reference: str
    description: str
    order_reference: str | None
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    # Until when the money is only held (None once taken or released).
    held_until: datetime | None
    fulfilment_reference: str | None

    def merchant_name(self, locale: str) -> str:
        return self.merchant_name_zh if locale.startswith("zh") else self.merchant_name_en


# Reads the details of a kind's operations, by operation id (one query for many).
DetailsLoader = Callable[["Session", Sequence[int]], Mapping[int, MerchantPaymentDetails]]


@dataclass(frozen=True, slots=True)
class OperationKind:
    name: str  # stored in ``operations.kind``; at most 16 characters
    label: str  # for people, in English (the message id of its translation): "Transfer"
    owner_direction: Direction
    # How it reads for the counterparty user (None: the kind has no counterparty user).
    counterparty_direction: Direction | None = None
    # Money leaving to others: counted against the owner's limits and in their spending.
    spends: bool = False
    # Who is told when it completes, and with which message template; the ledger check
    # (``purse ledger verify``) finds completed operations whose party got no message.
    told_on_completion: tuple[tuple[Party, str], ...] = ()
    # What the owning domain adds to the operation's view (the merchant and the order).
    details: DetailsLoader | None = None

    def direction_for(self, *, is_owner: bool) -> Direction:
        if is_owner or self.counterparty_direction is None:
            return self.owner_direction
        return self.counterparty_direction


class UnknownOperationKind(LookupError):
    """A kind no domain registered: a programming error, never user input."""


_KINDS: dict[str, OperationKind] = {}


def register(kind: OperationKind) -> OperationKind:
    """Declare a kind (once per name; registering the same declaration again is harmless)."""
    if not (0 < len(kind.name) <= 16 and kind.name.isidentifier()):
        raise ValueError(f"operation kind {kind.name!r} must be an identifier of 1-16 characters")
    existing = _KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"operation kind {kind.name!r} is registered twice, differently")
    _KINDS[kind.name] = kind
    return kind


def get(name: str) -> OperationKind:
    found = _KINDS.get(name)
    if found is None:
        raise UnknownOperationKind(name)
    return found


def registered() -> tuple[OperationKind, ...]:
    """Every registered kind, in the order the domains registered them."""
    return tuple(_KINDS.values())


def spending_kinds() -> tuple[str, ...]:
    """Kinds whose money leaves the owner to others (limits and spending count them)."""
    return tuple(kind.name for kind in _KINDS.values() if kind.spends)


def kinds_where(party: Party, direction: Direction) -> tuple[str, ...]:
    """Kinds that read as ``direction`` for ``party`` (for the activity filters)."""
    if party is Party.owner:
        return tuple(kind.name for kind in _KINDS.values() if kind.owner_direction == direction)
    return tuple(kind.name for kind in _KINDS.values() if kind.counterparty_direction == direction)
