"""Pure ledger rules, no database: each result code and their documented order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from purse.errors import RequestError
from purse.ledger import errors
from purse.ledger.rules import (
    AccountState,
    BatchState,
    GroupRequest,
    HoldState,
    Initiator,
    OriginalTransfer,
    TransferKind,
    TransferRequest,
    check_group_shape,
    transfer_hash,
)
from purse.money import errors as money_errors

NOW = datetime(2026, 1, 1, tzinfo=UTC)
INITIATOR = Initiator(kind="system", id="t")


def state(**changes: object) -> BatchState:
    accounts = {
        # Holds 10 and 11 are pending on account 1: 100 held, 100 available.
        1: AccountState(1, "CNY", "active", True, 100, 0, 0, 200),
        2: AccountState(2, "CNY", "active", True, 0, 0, 100, 0),
        3: AccountState(3, "USD", "active", True, 0, 0, 0, 100),
        4: AccountState(4, "CNY", "frozen", True, 0, 0, 0, 100),
        5: AccountState(5, "CNY", "closed", True, 0, 0, 0, 0),
    }
    holds = {
        10: HoldState(10, 1, 2, "CNY", 50, NOW + timedelta(seconds=60), "pending"),
        11: HoldState(11, 1, 2, "CNY", 50, NOW - timedelta(seconds=1), "pending"),
        12: HoldState(12, 1, 2, "CNY", 50, NOW + timedelta(seconds=60), "voided"),
    }
    originals = {
        20: OriginalTransfer(20, "posted", 2, 1, "CNY", 30),
        21: OriginalTransfer(21, "pending", 1, 2, "CNY", 5),
    }
    result = BatchState(
        accounts=accounts,
        holds=holds,
        originals=originals,
        reversed_minor={20: 10},
        now=NOW,
        timeout_seconds_max=3600,
    )
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def outcome(request: TransferRequest, batch: BatchState | None = None) -> RequestError | None:
    return (batch or state()).apply_group([request]).error


def posted(**fields: object) -> TransferRequest:
    base: dict[str, object] = {
        "debit_account_id": 1,
        "credit_account_id": 2,
        "asset": "CNY",
        "amount_minor": 10,
        "reason_code": "p2p",
    }
    base.update(fields)
    return TransferRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (
            posted(amount_minor=0, debit_account_id=1, credit_account_id=1),
            money_errors.AmountNotPositive,
        ),
        (posted(debit_account_id=99, credit_account_id=99), errors.AccountsMustBeDifferent),
        (posted(debit_account_id=99, credit_account_id=98), errors.DebitAccountNotFound),
        (posted(debit_account_id=4, credit_account_id=3, amount_minor=1000), errors.AssetMismatch),
        (posted(debit_account_id=4, credit_account_id=5, amount_minor=1000), errors.AccountClosed),
        (posted(debit_account_id=4, amount_minor=1000), errors.AccountFrozen),
        (posted(amount_minor=101), errors.InsufficientFunds),
        (posted(reason_code="", amount_minor=0), errors.TransferFieldsInvalid),
        (posted(timeout_seconds=5), errors.TransferFieldsInvalid),
        (posted(kind=TransferKind.pending, timeout_seconds=0), errors.HoldTimeoutInvalid),
        (posted(kind=TransferKind.pending, timeout_seconds=3601), errors.HoldTimeoutInvalid),
        (
            posted(kind=TransferKind.pending, timeout_seconds=60, amount_minor=101),
            errors.InsufficientFunds,
        ),
        (
            TransferRequest(kind=TransferKind.post_pending, pending_id=99, reason_code="c"),
            errors.PendingTransferNotFound,
        ),
        (
            TransferRequest(kind=TransferKind.post_pending, pending_id=12, reason_code="c"),
            errors.PendingTransferAlreadyVoided,
        ),
        (
            TransferRequest(
                kind=TransferKind.post_pending, pending_id=11, amount_minor=51, reason_code="c"
            ),
            errors.PendingTransferExpired,
        ),
        (
            TransferRequest(
                kind=TransferKind.post_pending, pending_id=10, amount_minor=51, reason_code="c"
            ),
            errors.ExceedsPendingAmount,
        ),
        (
            TransferRequest(kind=TransferKind.expire_pending, pending_id=10, reason_code="c"),
            errors.PendingTransferNotExpired,
        ),
        (
            TransferRequest(
                kind=TransferKind.void_pending, pending_id=10, amount_minor=5, reason_code="c"
            ),
            errors.TransferFieldsInvalid,
        ),
        (
            TransferRequest(kind=TransferKind.void_pending, reason_code="c"),
            errors.TransferFieldsInvalid,
        ),
        (TransferRequest(reversal_of=99, reason_code="r"), errors.ReversalTargetNotFound),
        (TransferRequest(reversal_of=21, reason_code="r"), errors.ReversalTargetNotPosted),
        (
            TransferRequest(reversal_of=20, amount_minor=21, reason_code="r"),
            errors.ReversalExceedsOriginal,
        ),
        (
            TransferRequest(reversal_of=20, debit_account_id=1, reason_code="r"),
            errors.TransferFieldsInvalid,
        ),
        (posted(amount_minor=2**63), money_errors.AmountOutOfRange),
    ],
)
def test_result_codes_follow_the_documented_order(
    request_: TransferRequest, error: type[Exception]
) -> None:
    result = outcome(request_)
    assert type(result) is error
    # Whatever is reported comes no later in RESULT_ORDER than any other rule it breaks.
    assert type(result) in errors.RESULT_ORDER


def test_overflow_is_refused() -> None:
    batch = state()
    batch.accounts[2].credits_posted = 2**63 - 5
    assert type(outcome(posted(amount_minor=10), batch)) is errors.BalanceOverflow


def test_group_failure_rolls_back_everything_it_changed() -> None:
    batch = state()
    group = [
        posted(amount_minor=60),
        TransferRequest(kind=TransferKind.void_pending, pending_id=10, reason_code="v"),
        posted(amount_minor=100),
    ]
    result = batch.apply_group(group)
    assert type(result.error) is errors.InsufficientFunds and result.failed_index == 2
    assert batch.accounts[1].debits_posted == 0 and batch.accounts[1].debits_pending == 100
    assert batch.holds[10].status == "pending"
    assert not batch.touched_accounts
    ok = batch.apply_group(group[:2])
    assert ok.error is None and len(ok.planned) == 2
    assert batch.accounts[1].debits_posted == 60 and batch.accounts[1].debits_pending == 50
    assert batch.holds[10].status == "voided"


def test_partial_reversals_add_up() -> None:
    batch = state()
    first = batch.apply_group([TransferRequest(reversal_of=20, amount_minor=15, reason_code="r")])
    assert first.error is None and first.planned[0].debit_account_id == 1
    rest = batch.apply_group([TransferRequest(reversal_of=20, reason_code="r")])
    assert rest.planned[0].amount_minor == 5
    assert type(batch.apply_group([TransferRequest(reversal_of=20, reason_code="r")]).error) is (
        errors.ReversalExceedsOriginal
    )


def test_group_shape() -> None:
    def group(n: int, **keys: str | None) -> GroupRequest:
        return GroupRequest(
            transfers=tuple(posted() for _ in range(n)), initiator=INITIATOR, **keys
        )

    assert (
        type(check_group_shape(group(0), group_size_max=2, key_length_max=8))
        is errors.TransferGroupEmpty
    )
    assert (
        type(check_group_shape(group(3), group_size_max=2, key_length_max=8))
        is errors.TransferGroupTooLarge
    )
    assert type(
        check_group_shape(group(1, idempotency_key="k"), group_size_max=2, key_length_max=8)
    ) is (errors.IdempotencyKeyInvalid)
    assert (
        check_group_shape(
            group(1, idempotency_key="k", idempotency_scope="s"), group_size_max=2, key_length_max=8
        )
        is None
    )


def test_fingerprint_covers_the_request_not_the_initiator() -> None:
    a = GroupRequest(transfers=(posted(),), initiator=INITIATOR)
    b = GroupRequest(transfers=(posted(),), initiator=Initiator(kind="user_session", id="other"))
    c = GroupRequest(transfers=(posted(amount_minor=11),), initiator=INITIATOR)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_hash_depends_on_every_field_and_escapes_separators() -> None:
    base = transfer_hash("0" * 64, (1, "a|b", None, NOW))
    assert base == transfer_hash("0" * 64, (1, "a|b", None, NOW))
    assert base != transfer_hash("0" * 64, (1, "a", "b", NOW))
    assert base != transfer_hash("1" * 64, (1, "a|b", None, NOW))
    assert base != transfer_hash("0" * 64, (1, "a|b", None, NOW + timedelta(microseconds=1)))
