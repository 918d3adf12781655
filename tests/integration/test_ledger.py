"""The ledger service on SQLite and PostgreSQL: each rule, each result code, verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from factories import SYSTEM, USER, balance, fund, open_system, open_wallet, wallets
from purse.db import Database
from purse.ledger import errors
from purse.ledger import queries as ledger_queries
from purse.ledger import service as ledger
from purse.ledger.rules import AccountStatus, GroupRequest, TransferKind, TransferRequest
from purse.ledger.sealer import seal_transfers
from purse.ledger.verify import verify_ledger
from purse.money.errors import AmountNotPositive

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_transfer_moves_money_and_records_initiator(database: Database) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=1_000)
    record = database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.posted,
                debit_account_id=alice,
                credit_account_id=bob,
                asset="CNY",
                amount_minor=250,
                reason_code="p2p",
                reference="note:lunch",
            ),
            initiator=USER,
        )
    )
    assert (record.initiator_kind, record.initiator_id, record.authenticated_by) == (
        "user_session",
        "session-1",
        "password",
    )
    assert balance(database, alice).balance_minor == 750
    assert balance(database, bob).balance_minor == 1_250
    stored = database.run(
        lambda s: ledger_queries.get_transfer(s, transfer_id=record.id), write=False
    )
    assert stored == record


def test_a_time_in_any_zone_is_kept_in_utc_and_verifies(database: Database) -> None:
    """A transfer (and a hold's expiry) dated in another zone hashes as verify reads it
    back; a time with no zone is refused rather than guessed."""
    _, (alice, bob) = wallets(database, count=2, balance_minor=1_000)
    shanghai = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))

    def transfer(
        now: datetime, kind: TransferKind, **more: object
    ) -> ledger_queries.TransferRecord:
        return database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=kind,
                    debit_account_id=alice,
                    credit_account_id=bob,
                    asset="CNY",
                    amount_minor=100,
                    reason_code="p2p",
                    **more,  # type: ignore[arg-type]
                ),
                initiator=USER,
                now=now,
            )
        )

    posted = transfer(shanghai, TransferKind.posted)
    held = transfer(shanghai, TransferKind.pending, timeout_seconds=600)
    assert posted.created_at == shanghai and posted.created_at.utcoffset() == timedelta(0)
    assert held.expires_at == shanghai + timedelta(seconds=600)
    report = database.run(verify_ledger, write=False)
    assert report.ok, report.problems
    with pytest.raises(ValueError, match="timezone-aware"):
        transfer(shanghai.replace(tzinfo=None), TransferKind.posted)


def test_insufficient_funds_changes_nothing(database: Database) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    with pytest.raises(errors.InsufficientFunds):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=alice,
                    credit_account_id=bob,
                    asset="CNY",
                    amount_minor=101,
                    reason_code="p2p",
                ),
                initiator=USER,
            )
        )
    assert balance(database, alice).balance_minor == 100
    assert balance(database, bob).balance_minor == 100


def test_system_account_may_go_negative(database: Database) -> None:
    source, (alice,) = wallets(database, count=1, balance_minor=500)
    assert balance(database, source).balance_minor == -500
    assert balance(database, alice).balance_minor == 500


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"asset": "USD"}, errors.AssetMismatch),
        ({"amount_minor": 0}, AmountNotPositive),
        ({"amount_minor": -5}, AmountNotPositive),
        ({"credit_account_id": "debit"}, errors.AccountsMustBeDifferent),
        ({"debit_account_id": 999_999}, errors.DebitAccountNotFound),
        ({"credit_account_id": 999_999}, errors.CreditAccountNotFound),
        ({"reason_code": ""}, errors.TransferFieldsInvalid),
    ],
)
def test_bad_transfers_are_refused(
    database: Database, change: dict[str, object], error: type[Exception]
) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    fields: dict[str, object] = {
        "debit_account_id": alice,
        "credit_account_id": bob,
        "asset": "CNY",
        "amount_minor": 10,
        "reason_code": "p2p",
    }
    fields.update(change)
    if fields["credit_account_id"] == "debit":
        fields["credit_account_id"] = alice
    with pytest.raises(error):
        database.run(
            lambda s: ledger.submit_transfer(s, TransferRequest(**fields), initiator=USER)  # type: ignore[arg-type]
        )
    assert balance(database, alice).balance_minor == 100


def test_group_is_all_or_nothing(database: Database) -> None:
    source, (alice, bob) = wallets(database, count=2, balance_minor=100)
    fee = database.run(lambda s: open_system(s, kind="fee_revenue").id)
    group = GroupRequest(
        transfers=(
            TransferRequest(
                debit_account_id=alice,
                credit_account_id=bob,
                asset="CNY",
                amount_minor=90,
                reason_code="p2p",
            ),
            TransferRequest(
                debit_account_id=alice,
                credit_account_id=fee,
                asset="CNY",
                amount_minor=20,
                reason_code="fee",
            ),
        ),
        initiator=USER,
    )
    result = database.run(lambda s: ledger.submit(s, groups=[group]))[0]
    assert isinstance(result.error, errors.InsufficientFunds)
    assert result.failed_index == 1
    assert result.error.data["transfer_index"] == 1
    assert balance(database, alice).balance_minor == 100
    assert balance(database, fee).balance_minor == 0

    ok = GroupRequest(
        transfers=(
            group.transfers[0],
            group.transfers[1].__class__(
                debit_account_id=alice,
                credit_account_id=fee,
                asset="CNY",
                amount_minor=10,
                reason_code="fee",
            ),
        ),
        initiator=USER,
    )
    result = database.run(lambda s: ledger.submit(s, groups=[ok]))[0]
    assert result.ok and len(result.transfers) == 2
    assert {t.group_id for t in result.transfers} == {result.transfers[0].id}
    assert balance(database, alice).balance_minor == 0
    assert balance(database, fee).balance_minor == 10


def test_batch_reports_each_group_on_its_own(database: Database) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)

    def pay(amount: int, key: str | None = None) -> GroupRequest:
        return GroupRequest(
            transfers=(
                TransferRequest(
                    debit_account_id=alice,
                    credit_account_id=bob,
                    asset="CNY",
                    amount_minor=amount,
                    reason_code="p2p",
                ),
            ),
            initiator=USER,
            idempotency_scope="user:1" if key else None,
            idempotency_key=key,
        )

    results = database.run(
        lambda s: ledger.submit(
            s, groups=[pay(60, "a"), pay(60, "b"), pay(40, "c"), pay(60, "a"), pay(1, "a")]
        )
    )
    assert [r.ok for r in results] == [True, False, True, True, False]
    assert isinstance(results[1].error, errors.InsufficientFunds)
    assert results[3].replayed and results[3].transfers == results[0].transfers
    assert isinstance(results[4].error, errors.IdempotencyKeyReused)
    assert balance(database, alice).balance_minor == 0
    assert balance(database, bob).balance_minor == 200


def test_idempotency_key_replays_and_refuses_another_request(database: Database) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=1_000)

    def send(amount: int, scope: str = "user:1") -> ledger_queries.TransferRecord:
        return database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=alice,
                    credit_account_id=bob,
                    asset="CNY",
                    amount_minor=amount,
                    reason_code="p2p",
                ),
                initiator=USER,
                idempotency_scope=scope,
                idempotency_key="key-1",
            )
        )

    first = send(100)
    again = send(100)
    assert again == first
    with pytest.raises(errors.IdempotencyKeyReused):
        send(101)
    other_caller = send(100, scope="user:2")  # keys belong to their caller
    assert other_caller.id != first.id
    assert balance(database, alice).balance_minor == 800


def test_idempotency_key_must_be_sane(database: Database) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    for scope, key in [("user:1", ""), ("user:1", "x" * 256), ("", "k"), ("user:1", "bad\nkey")]:
        with pytest.raises(errors.IdempotencyKeyInvalid):
            database.run(
                partial(
                    ledger.submit_transfer,
                    request=TransferRequest(
                        kind=TransferKind.posted,
                        debit_account_id=alice,
                        credit_account_id=bob,
                        asset="CNY",
                        amount_minor=1,
                        reason_code="p2p",
                    ),
                    initiator=USER,
                    idempotency_scope=scope,
                    idempotency_key=key,
                )
            )


def _hold(
    database: Database,
    debit: int,
    credit: int,
    amount: int,
    *,
    timeout: int = 60,
    now: datetime = NOW,
) -> ledger_queries.TransferRecord:
    return database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.pending,
                debit_account_id=debit,
                credit_account_id=credit,
                asset="CNY",
                amount_minor=amount,
                timeout_seconds=timeout,
                reason_code="withdrawal",
            ),
            initiator=USER,
            now=now,
        )
    )


def test_hold_reserves_and_partial_post_releases_the_rest(database: Database) -> None:
    _, (alice, shop) = wallets(database, count=2, balance_minor=1_000)
    held = _hold(database, alice, shop, 400)
    assert held.expires_at == NOW + timedelta(seconds=60)
    account = balance(database, alice)
    assert (account.balance_minor, account.available_minor, account.debits_pending) == (
        1_000,
        600,
        400,
    )
    with pytest.raises(errors.InsufficientFunds):
        _hold(database, alice, shop, 601)
    with pytest.raises(errors.ExceedsPendingAmount):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.post_pending,
                    pending_id=held.id,
                    amount_minor=401,
                    reason_code="capture",
                ),
                initiator=USER,
                now=NOW,
            )
        )
    posted = database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.post_pending,
                pending_id=held.id,
                amount_minor=300,
                reason_code="capture",
            ),
            initiator=USER,
            now=NOW,
        )
    )
    assert (posted.kind, posted.amount_minor, posted.pending_id) == ("post_pending", 300, held.id)
    account = balance(database, alice)
    assert (account.balance_minor, account.available_minor, account.debits_pending) == (700, 700, 0)
    assert balance(database, shop).balance_minor == 1_300
    with pytest.raises(errors.PendingTransferAlreadyPosted):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.void_pending, pending_id=held.id, reason_code="cancel"
                ),
                initiator=USER,
                now=NOW,
            )
        )


def test_void_releases_and_cannot_resolve_twice(database: Database) -> None:
    _, (alice, shop) = wallets(database, count=2, balance_minor=500)
    held = _hold(database, alice, shop, 500)
    database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.void_pending, pending_id=held.id, reason_code="cancel"
            ),
            initiator=USER,
            now=NOW,
        )
    )
    assert balance(database, alice).available_minor == 500
    with pytest.raises(errors.PendingTransferAlreadyVoided):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.void_pending, pending_id=held.id, reason_code="cancel"
                ),
                initiator=USER,
                now=NOW,
            )
        )
    with pytest.raises(errors.PendingTransferNotFound):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.post_pending, pending_id=999_999, reason_code="capture"
                ),
                initiator=USER,
                now=NOW,
            )
        )


def test_expiry_job_releases_overdue_holds_once(database: Database) -> None:
    _, (alice, shop) = wallets(database, count=2, balance_minor=500)
    short = _hold(database, alice, shop, 100, timeout=10)
    long = _hold(database, alice, shop, 200, timeout=3600)
    later = NOW + timedelta(seconds=10)
    with pytest.raises(errors.PendingTransferExpired):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.post_pending, pending_id=short.id, reason_code="capture"
                ),
                initiator=USER,
                now=later,
            )
        )
    assert database.run(lambda s: ledger.expire_overdue_holds(s, now=later)) == 1
    assert database.run(lambda s: ledger.expire_overdue_holds(s, now=later)) == 0
    assert balance(database, alice).available_minor == 300
    with pytest.raises(errors.PendingTransferAlreadyExpired):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.void_pending, pending_id=short.id, reason_code="cancel"
                ),
                initiator=USER,
                now=later,
            )
        )
    expire_early = GroupRequest(
        transfers=(
            TransferRequest(kind=TransferKind.expire_pending, pending_id=long.id, reason_code="x"),
        ),
        initiator=SYSTEM,
    )
    result = database.run(lambda s: ledger.submit(s, groups=[expire_early], now=later))[0]
    assert isinstance(result.error, errors.PendingTransferNotExpired)


def test_reversal_is_a_new_linked_transfer_and_never_exceeds_the_original(
    database: Database,
) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=1_000)
    original = database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.posted,
                debit_account_id=alice,
                credit_account_id=bob,
                asset="CNY",
                amount_minor=300,
                reason_code="p2p",
            ),
            initiator=USER,
        )
    )
    part = database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.posted,
                reversal_of=original.id,
                amount_minor=100,
                reason_code="refund",
            ),
            initiator=SYSTEM,
        )
    )
    assert (part.debit_account_id, part.credit_account_id, part.reversal_of) == (
        bob,
        alice,
        original.id,
    )
    with pytest.raises(errors.ReversalExceedsOriginal) as excinfo:
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted,
                    reversal_of=original.id,
                    amount_minor=201,
                    reason_code="refund",
                ),
                initiator=SYSTEM,
            )
        )
    assert excinfo.value.data["remaining"] == 200
    rest = database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.posted, reversal_of=original.id, reason_code="refund"
            ),
            initiator=SYSTEM,
        )
    )
    assert rest.amount_minor == 200
    assert balance(database, alice).balance_minor == 1_000
    assert (
        database.run(lambda s: ledger_queries.get_transfer(s, transfer_id=original.id)) == original
    )
    held = _hold(database, alice, bob, 10)
    with pytest.raises(errors.ReversalTargetNotPosted):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted, reversal_of=held.id, reason_code="refund"
                ),
                initiator=SYSTEM,
            )
        )
    with pytest.raises(errors.ReversalTargetNotFound):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted, reversal_of=999_999, reason_code="refund"
                ),
                initiator=SYSTEM,
            )
        )


def test_frozen_account_receives_but_cannot_pay_and_closed_takes_nothing(
    database: Database,
) -> None:
    source, (alice, bob) = wallets(database, count=2, balance_minor=100)
    database.run(
        lambda s: ledger.set_account_status(s, account_id=alice, status=AccountStatus.frozen)
    )
    with pytest.raises(errors.AccountFrozen):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=alice,
                    credit_account_id=bob,
                    asset="CNY",
                    amount_minor=1,
                    reason_code="p2p",
                ),
                initiator=USER,
            )
        )
    # Frozen is reported before insufficient funds (the documented order).
    with pytest.raises(errors.AccountFrozen):
        database.run(
            lambda s: ledger.submit_transfer(
                s,
                TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=alice,
                    credit_account_id=bob,
                    asset="CNY",
                    amount_minor=10_000,
                    reason_code="p2p",
                ),
                initiator=USER,
            )
        )
    database.run(lambda s: fund(s, source_id=source, wallet_id=alice, amount_minor=5))
    assert balance(database, alice).balance_minor == 105
    with pytest.raises(errors.AccountNotEmpty):
        database.run(
            lambda s: ledger.set_account_status(s, account_id=alice, status=AccountStatus.closed)
        )
    empty = database.run(lambda s: open_wallet(s, owner_id="9").id)
    database.run(
        lambda s: ledger.set_account_status(s, account_id=empty, status=AccountStatus.closed)
    )
    with pytest.raises(errors.AccountClosed):
        database.run(lambda s: fund(s, source_id=source, wallet_id=empty, amount_minor=5))
    with pytest.raises(errors.AccountStatusInvalid):
        database.run(
            lambda s: ledger.set_account_status(s, account_id=empty, status=AccountStatus.active)
        )
    with pytest.raises(errors.AccountNotFound):
        database.run(
            lambda s: ledger.set_account_status(s, account_id=999_999, status=AccountStatus.frozen)
        )


def test_purge_forgets_old_idempotency_keys_only(database: Database) -> None:
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    for key, when in (("old", NOW - timedelta(hours=49)), ("new", NOW - timedelta(hours=1))):
        database.run(
            partial(
                ledger.submit_transfer,
                request=TransferRequest(
                    kind=TransferKind.posted,
                    debit_account_id=alice,
                    credit_account_id=bob,
                    asset="CNY",
                    amount_minor=1,
                    reason_code="p2p",
                ),
                initiator=USER,
                idempotency_scope="user:1",
                idempotency_key=key,
                now=when,
            )
        )
    purged = database.run(
        lambda s: ledger.purge_idempotency_keys(s, retention_seconds=48 * 3600, now=NOW)
    )
    assert purged == 1
    kept = database.run(
        lambda s: s.execute(text("SELECT key FROM ledger_idempotency")).scalars().all()
    )
    assert kept == ["new"]


def test_verify_detects_tampering_and_missing_transfers(database_url: str) -> None:
    from factories import make_settings

    database = Database(make_settings(database_url))
    _, (alice, bob) = wallets(database, count=2, balance_minor=100)
    database.run(
        lambda s: ledger.submit_transfer(
            s,
            TransferRequest(
                kind=TransferKind.posted,
                debit_account_id=alice,
                credit_account_id=bob,
                asset="CNY",
                amount_minor=40,
                reason_code="p2p",
            ),
            initiator=USER,
        )
    )

    def report() -> list[str]:
        result = database.run(lambda s: verify_ledger(s), write=False)
        return sorted({p.check for p in result.problems})

    assert report() == []
    database.run(seal_transfers)  # at once on SQLite; the job's work on PostgreSQL
    database.run(
        lambda s: s.execute(text("UPDATE ledger_transfers SET amount_minor = 4 WHERE id = 3"))
    )
    assert report() == ["balance_replay", "hash_chain"]
    database.run(
        lambda s: s.execute(text("UPDATE ledger_transfers SET amount_minor = 40 WHERE id = 3"))
    )
    assert report() == []
    database.run(
        lambda s: s.execute(
            text("UPDATE ledger_accounts SET credits_posted = 0 WHERE id = :id"), {"id": bob}
        )
    )
    assert report() == ["asset_sum", "balance_replay"]
    database.run(
        lambda s: s.execute(
            text("UPDATE ledger_accounts SET credits_posted = 140 WHERE id = :id"), {"id": bob}
        )
    )
    database.run(
        lambda s: s.execute(
            text("UPDATE ledger_accounts SET debits_posted = 200 WHERE id = :id"), {"id": alice}
        )
    )
    assert report() == ["asset_sum", "balance_replay", "negative_wallet"]
    database.run(
        lambda s: s.execute(
            text("UPDATE ledger_accounts SET debits_posted = 40 WHERE id = :id"), {"id": alice}
        )
    )
    assert report() == []
    held = _hold(database, alice, bob, 10, now=datetime(2020, 1, 1, tzinfo=UTC))
    assert report() == ["hold_overdue"]
    database.run(lambda s: ledger.expire_overdue_holds(s))
    assert report() == []
    database.run(
        lambda s: s.execute(
            text("UPDATE ledger_holds SET status = 'pending' WHERE transfer_id = :id"),
            {"id": held.id},
        )
    )
    assert "hold_state" in report()
    database.dispose()
