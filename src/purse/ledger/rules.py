"""Pure ledger decisions: what a transfer does to balances, and whether it may.

Nothing here touches a database. The service loads (and locks) the rows a batch
needs into a :class:`BatchState`, asks it to apply each group, and writes what it
planned. Keeping the rules pure lets the unit tests cover every result code and
their order without a database, and keeps the write path short.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from purse.errors import RequestError
from purse.hashchain import link_hash
from purse.ledger import errors
from purse.money.errors import AmountNotPositive, AmountOutOfRange
from purse.settings import Settings

INT64_MAX = 2**63 - 1
REASON_CODE_LENGTH_MAX = 64
REFERENCE_LENGTH_MAX = 128


class TransferKind(StrEnum):
    posted = "posted"  # single-phase: money moves at once
    pending = "pending"  # a hold: reserves money until posted, voided or expired
    post_pending = "post_pending"  # completes a hold, fully or partly
    void_pending = "void_pending"  # releases a hold
    expire_pending = "expire_pending"  # releases a hold whose time ran out (system only)


RESOLUTION_KINDS = frozenset(
    {TransferKind.post_pending, TransferKind.void_pending, TransferKind.expire_pending}
)
POSTED_KINDS = frozenset({TransferKind.posted, TransferKind.post_pending})


class AccountStatus(StrEnum):
    active = "active"
    frozen = "frozen"  # money may come in, not go out
    closed = "closed"  # nothing moves, except releasing holds


class HoldStatus(StrEnum):
    pending = "pending"
    posted = "posted"
    voided = "voided"
    expired = "expired"


_HOLD_STATUS_AFTER = {
    TransferKind.post_pending: HoldStatus.posted,
    TransferKind.void_pending: HoldStatus.voided,
    TransferKind.expire_pending: HoldStatus.expired,
}
_ALREADY_RESOLVED = {
    HoldStatus.posted: errors.PendingTransferAlreadyPosted,
    HoldStatus.voided: errors.PendingTransferAlreadyVoided,
    HoldStatus.expired: errors.PendingTransferAlreadyExpired,
}


def month_start_after(instant: datetime, timezone: str) -> datetime:
    """The first local midnight on a 1st after ``instant`` in ``timezone``, in UTC.

    The same month starts as statements use; a month balance is kept at each.
    """
    local = instant.astimezone(ZoneInfo(timezone))
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def available_minor(*, credits_posted: int, debits_posted: int, debits_pending: int) -> int:
    """What a debit may still take: posted credits less posted and held debits.

    The one formula for "available" in purse: balances, limits and checks all use it.
    Pending credits do not count: money on its way in is not there until it is posted.
    """
    return credits_posted - debits_posted - debits_pending


@dataclass(frozen=True, slots=True)
class LedgerLimits:
    """The ledger's bounds, from settings (``PURSE_TRANSFER_BATCH_SIZE_MAX`` and the rest)."""

    batch_size_max: int = 8190
    group_size_max: int = 64
    hold_timeout_seconds_max: int = 60 * 60 * 24 * 30
    idempotency_key_length_max: int = 255

    @classmethod
    def from_settings(cls, settings: Settings) -> LedgerLimits:
        return cls(
            batch_size_max=settings.transfer_batch_size_max,
            group_size_max=settings.transfer_group_size_max,
            hold_timeout_seconds_max=settings.hold_timeout_seconds_max,
            idempotency_key_length_max=settings.idempotency_key_length_max,
        )


DEFAULT_LIMITS = LedgerLimits()


@dataclass(frozen=True, slots=True)
class Initiator:
    """Who asked for the money to move, and how they proved it."""

    kind: str  # user_session, api_key, oauth_grant, agent, system, ...
    id: str
    authenticated_by: str = "none"  # password, password+totp, api_key, system, ...


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """One transfer of a group, as a caller asks for it.

    Resolutions of a hold name only ``pending_id`` (and, for a partial post, an
    amount); reversals name only ``reversal_of`` (and optionally a partial
    amount). Accounts and asset then come from the hold or the original.
    """

    reason_code: str
    kind: TransferKind = TransferKind.posted
    debit_account_id: int | None = None
    credit_account_id: int | None = None
    asset: str | None = None
    amount_minor: int | None = None
    pending_id: int | None = None
    timeout_seconds: int | None = None
    reversal_of: int | None = None
    reference: str | None = None

    def canonical(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "debit": self.debit_account_id,
            "credit": self.credit_account_id,
            "asset": self.asset,
            "amount": self.amount_minor,
            "pending_id": self.pending_id,
            "timeout": self.timeout_seconds,
            "reversal_of": self.reversal_of,
            "reason": self.reason_code,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """Transfers that commit together or not at all, with an optional idempotency key."""

    transfers: tuple[TransferRequest, ...]
    initiator: Initiator
    idempotency_scope: str | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """A digest of what was asked (not who asked: the scope says that)."""
        body = json.dumps([t.canonical() for t in self.transfers], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(slots=True)
class AccountState:
    id: int
    asset: str
    status: str
    debits_must_not_exceed_credits: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @property
    def available_minor(self) -> int:
        return available_minor(
            credits_posted=self.credits_posted,
            debits_posted=self.debits_posted,
            debits_pending=self.debits_pending,
        )


@dataclass(slots=True)
class HoldState:
    transfer_id: int
    debit_account_id: int
    credit_account_id: int
    asset: str
    amount_minor: int
    expires_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class OriginalTransfer:
    """A posted transfer that a reversal refers to."""

    id: int
    kind: str
    debit_account_id: int
    credit_account_id: int
    asset: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    """A transfer that passed every check, with its accounts and amount resolved."""

    kind: TransferKind
    debit_account_id: int
    credit_account_id: int
    asset: str
    amount_minor: int
    reason_code: str
    reference: str | None
    pending_id: int | None
    expires_at: datetime | None
    reversal_of: int | None


@dataclass(slots=True)
class GroupOutcome:
    planned: list[PlannedTransfer] = field(default_factory=list)
    error: RequestError | None = None
    failed_index: int | None = None


def check_group_shape(
    group: GroupRequest, *, group_size_max: int, key_length_max: int
) -> RequestError | None:
    if not group.transfers:
        return errors.TransferGroupEmpty()
    if len(group.transfers) > group_size_max:
        return errors.TransferGroupTooLarge(size_max=group_size_max)
    if group.idempotency_key is not None or group.idempotency_scope is not None:
        key, scope = group.idempotency_key or "", group.idempotency_scope or ""
        if not (
            0 < len(key) <= key_length_max
            and key.isprintable()
            and 0 < len(scope) <= 128
            and scope.isprintable()
        ):
            return errors.IdempotencyKeyInvalid(length_max=key_length_max)
    return None


def check_fields(request: TransferRequest, *, timeout_seconds_max: int) -> RequestError | None:
    """Checks that need nothing but the request itself."""

    def invalid(name: str, reason: str) -> errors.TransferFieldsInvalid:
        return errors.TransferFieldsInvalid(field=name, reason=reason)

    if not (0 < len(request.reason_code) <= REASON_CODE_LENGTH_MAX):
        return invalid("reason_code", f"1 to {REASON_CODE_LENGTH_MAX} characters")
    if request.reference is not None and len(request.reference) > REFERENCE_LENGTH_MAX:
        return invalid("reference", f"at most {REFERENCE_LENGTH_MAX} characters")
    kind = request.kind
    is_resolution = kind in RESOLUTION_KINDS
    is_reversal = request.reversal_of is not None
    if is_resolution:
        if request.pending_id is None:
            return invalid("pending_id", "required to resolve a hold")
        for name in ("debit_account_id", "credit_account_id", "asset", "reversal_of"):
            if getattr(request, name) is not None:
                return invalid(name, "taken from the hold")
        if kind is not TransferKind.post_pending and request.amount_minor is not None:
            return invalid("amount_minor", "a hold is released in full")
    else:
        if request.pending_id is not None:
            return invalid("pending_id", f"only for resolving a hold, not for {kind}")
        if is_reversal:
            if kind is not TransferKind.posted:
                return invalid("reversal_of", "a reversal is a posted transfer")
            for name in ("debit_account_id", "credit_account_id", "asset"):
                if getattr(request, name) is not None:
                    return invalid(name, "taken from the transfer being reversed")
        else:
            for name in ("debit_account_id", "credit_account_id", "asset", "amount_minor"):
                if getattr(request, name) is None:
                    return invalid(name, "required")
    if kind is not TransferKind.pending and request.timeout_seconds is not None:
        return invalid("timeout_seconds", "only holds expire")
    if request.amount_minor is not None:
        if request.amount_minor <= 0:
            return AmountNotPositive()
        if request.amount_minor > INT64_MAX:
            return AmountOutOfRange(value=str(request.amount_minor))
    if kind is TransferKind.pending and not (
        request.timeout_seconds is not None and 0 < request.timeout_seconds <= timeout_seconds_max
    ):
        return errors.HoldTimeoutInvalid(timeout_seconds_max=timeout_seconds_max)
    if (
        not is_resolution
        and not is_reversal
        and request.debit_account_id == request.credit_account_id
    ):
        return errors.AccountsMustBeDifferent()
    return None


class BatchState:
    """The locked rows of a batch, changed in memory as groups are applied.

    Each group is applied all-or-nothing: every change is recorded in an undo log
    and rolled back if a later transfer of the same group fails.
    """

    def __init__(
        self,
        *,
        accounts: dict[int, AccountState],
        holds: dict[int, HoldState],
        originals: dict[int, OriginalTransfer],
        reversed_minor: dict[int, int],
        now: datetime,
        timeout_seconds_max: int,
    ) -> None:
        self.accounts = accounts
        self.holds = holds
        self.originals = originals
        self.reversed_minor = reversed_minor
        self.now = now
        self.timeout_seconds_max = timeout_seconds_max
        self.touched_accounts: set[int] = set()
        self.touched_holds: set[int] = set()

    def apply_group(self, transfers: Sequence[TransferRequest]) -> GroupOutcome:
        undo_accounts: dict[int, AccountState] = {}
        undo_holds: dict[int, HoldState] = {}
        undo_reversed: dict[int, int] = {}
        outcome = GroupOutcome()
        for index, request in enumerate(transfers):
            result = self._apply(request, undo_accounts, undo_holds, undo_reversed)
            if isinstance(result, RequestError):
                self.accounts.update(undo_accounts)
                self.holds.update(undo_holds)
                self.reversed_minor.update(undo_reversed)
                outcome.planned.clear()
                outcome.error = result
                outcome.failed_index = index
                return outcome
            outcome.planned.append(result)
        self.touched_accounts.update(undo_accounts)
        self.touched_holds.update(undo_holds)
        return outcome

    def _apply(
        self,
        request: TransferRequest,
        undo_accounts: dict[int, AccountState],
        undo_holds: dict[int, HoldState],
        undo_reversed: dict[int, int],
    ) -> PlannedTransfer | RequestError:
        error = check_fields(request, timeout_seconds_max=self.timeout_seconds_max)
        if error is not None:
            return error
        kind = request.kind
        hold: HoldState | None = None
        original: OriginalTransfer | None = None
        if kind in RESOLUTION_KINDS:
            assert request.pending_id is not None
            hold = self.holds.get(request.pending_id)
            if hold is None:
                return errors.PendingTransferNotFound()
            debit_id, credit_id, asset = hold.debit_account_id, hold.credit_account_id, hold.asset
        elif request.reversal_of is not None:
            original = self.originals.get(request.reversal_of)
            if original is None:
                return errors.ReversalTargetNotFound()
            debit_id, credit_id = original.credit_account_id, original.debit_account_id
            asset = original.asset
        else:
            assert request.debit_account_id is not None and request.credit_account_id is not None
            assert request.asset is not None
            debit_id, credit_id, asset = (
                request.debit_account_id,
                request.credit_account_id,
                request.asset,
            )
        debit = self.accounts.get(debit_id)
        if debit is None:
            return errors.DebitAccountNotFound()
        credit = self.accounts.get(credit_id)
        if credit is None:
            return errors.CreditAccountNotFound()

        if hold is not None:
            if hold.status != HoldStatus.pending:
                return _ALREADY_RESOLVED[HoldStatus(hold.status)]()
            has_expired = hold.expires_at <= self.now
            if kind is TransferKind.expire_pending and not has_expired:
                return errors.PendingTransferNotExpired()
            if kind is not TransferKind.expire_pending and has_expired:
                return errors.PendingTransferExpired()
        if original is not None and original.kind not in POSTED_KINDS:
            return errors.ReversalTargetNotPosted()
        if debit.asset != asset or credit.asset != asset:
            return errors.AssetMismatch()
        moves_money = kind in (TransferKind.posted, TransferKind.pending, TransferKind.post_pending)
        if moves_money and AccountStatus.closed in (debit.status, credit.status):
            return errors.AccountClosed()
        if moves_money and debit.status == AccountStatus.frozen:
            return errors.AccountFrozen()

        amount = request.amount_minor
        if hold is not None:
            if amount is None or kind is not TransferKind.post_pending:
                amount = hold.amount_minor
            elif amount > hold.amount_minor:
                return errors.ExceedsPendingAmount()
        if original is not None:
            remaining = original.amount_minor - self.reversed_minor.get(original.id, 0)
            if amount is None:
                amount = remaining
            if amount <= 0 or amount > remaining:
                return errors.ReversalExceedsOriginal(remaining=remaining)
        assert amount is not None

        new_debit = replace(debit)
        new_credit = replace(credit)
        if kind is TransferKind.posted:
            new_debit.debits_posted += amount
            new_credit.credits_posted += amount
        elif kind is TransferKind.pending:
            new_debit.debits_pending += amount
            new_credit.credits_pending += amount
        else:
            assert hold is not None
            new_debit.debits_pending -= hold.amount_minor
            new_credit.credits_pending -= hold.amount_minor
            if kind is TransferKind.post_pending:
                new_debit.debits_posted += amount
                new_credit.credits_posted += amount
        if new_debit.debits_must_not_exceed_credits and kind in (
            TransferKind.posted,
            TransferKind.pending,
        ):
            if new_debit.available_minor < 0:
                return errors.InsufficientFunds()
        for state in (new_debit, new_credit):
            if (
                max(
                    state.debits_posted + state.debits_pending,
                    state.credits_posted + state.credits_pending,
                )
                > INT64_MAX
            ):
                return errors.BalanceOverflow()

        undo_accounts.setdefault(debit_id, debit)
        undo_accounts.setdefault(credit_id, credit)
        self.accounts[debit_id] = new_debit
        self.accounts[credit_id] = new_credit
        if hold is not None:
            undo_holds.setdefault(hold.transfer_id, hold)
            self.holds[hold.transfer_id] = replace(hold, status=_HOLD_STATUS_AFTER[kind])
        if original is not None:
            undo_reversed.setdefault(original.id, self.reversed_minor.get(original.id, 0))
            self.reversed_minor[original.id] = self.reversed_minor.get(original.id, 0) + amount
        expires_at = None
        if kind is TransferKind.pending:
            assert request.timeout_seconds is not None
            expires_at = self.now + timedelta(seconds=request.timeout_seconds)
        return PlannedTransfer(
            kind=kind,
            debit_account_id=debit_id,
            credit_account_id=credit_id,
            asset=asset,
            amount_minor=amount,
            reason_code=request.reason_code,
            reference=request.reference,
            pending_id=request.pending_id,
            expires_at=expires_at,
            reversal_of=request.reversal_of,
        )


transfer_hash = link_hash


def hash_fields(
    *,
    transfer_id: int,
    group_id: int,
    planned: PlannedTransfer,
    initiator: Initiator,
    created_at: datetime,
) -> tuple[object, ...]:
    """The fields of a transfer that its hash covers, in a fixed order."""
    return (
        transfer_id,
        group_id,
        str(planned.kind),
        planned.debit_account_id,
        planned.credit_account_id,
        planned.asset,
        planned.amount_minor,
        planned.pending_id,
        planned.expires_at,
        planned.reversal_of,
        planned.reason_code,
        planned.reference,
        initiator.kind,
        initiator.id,
        initiator.authenticated_by,
        created_at,
    )
