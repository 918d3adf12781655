"""Top-ups and withdrawals against the provider simulator, on SQLite and PostgreSQL.

Each scenario a real processor can produce: settlement later, declines at once
and later, a timeout whose payment went through, a duplicate callback, a crash
between writing the operation and calling the bank. The ledger must be right
after each (checked by the fixture) and money must move at most once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from factories import make_settings
from purse.assembly import assemble
from purse.db import Database
from purse.errors import PurseError
from purse.funding import service as funding_service
from purse.funding.models import FundingSource
from purse.funding.provider import Answer, AnswerStatus, BankAccountDetails, CardDetails, Event
from purse.identity.principal import Principal
from purse.ledger import service as ledger
from purse.ledger.models import Transfer
from purse.ledger.verify import verify_ledger
from purse.models import utc_now
from purse.operations.models import Operation, OperationEvent
from purse.wallet import banking
from purse.wallet.context import Wallet
from wallet_support import add_card, balance, counts, make_user, operation, top_up


@pytest.fixture
def wallet(database_url: str) -> Iterator[Wallet]:
    database = Database(make_settings(database_url, simulator_settle_seconds=0))
    yield assemble(database.settings, database=database).wallet
    report = database.run(lambda s: verify_ledger(s, hold_expiry_grace_seconds=10**9), write=False)
    assert report.ok, report.problems
    database.dispose()


@pytest.fixture
def wang(wallet: Wallet) -> Principal:
    return make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")


def events(wallet: Wallet, operation_id: int) -> list[str]:
    return wallet.database.run(
        lambda s: [
            f"{event}:{detail}" if detail else event
            for event, detail in s.execute(
                select(OperationEvent.event, OperationEvent.detail)
                .where(OperationEvent.operation_id == operation_id)
                .order_by(OperationEvent.id)
            )
        ],
        write=False,
    )


def start(wallet: Wallet, caller: Principal, kind: str, source_id: int, amount_minor: int) -> int:
    begin = banking.start_top_up if kind == "top_up" else banking.start_withdrawal
    result = wallet.database.run(
        lambda s: begin(
            s,
            wallet=wallet,
            principal=caller,
            funding_source_id=source_id,
            asset="CNY",
            amount_minor=amount_minor,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    return result.operation.id


def transfers_of(wallet: Wallet, reference: str) -> list[str]:
    return wallet.database.run(
        lambda s: list(
            s.scalars(
                select(Transfer.kind).where(Transfer.reference == reference).order_by(Transfer.id)
            )
        ),
        write=False,
    )


def test_top_up_is_pending_until_the_bank_settles(wallet: Wallet, wang: Principal) -> None:
    source = add_card(wallet, wang)
    operation_id = start(wallet, wang, "top_up", source, 10_000)
    banking.submit_to_provider(wallet, operation_id=operation_id)
    pending = operation(wallet.database, operation_id)
    assert (pending.status, pending.provider_stage) == ("pending", "submitted")
    assert balance(wallet.database, wang).balance_minor == 0  # type: ignore[union-attr]
    assert wallet.simulator.settle_due() == 1
    done = operation(wallet.database, operation_id)
    assert done.status == "completed" and done.provider_reference.startswith("simpay_")  # type: ignore[union-attr]
    assert balance(wallet.database, wang).balance_minor == 10_000  # type: ignore[union-attr]
    assert events(wallet, operation_id) == ["created", "submitted", "posted"]


@pytest.mark.parametrize(
    ("card", "code", "settle_calls"),
    [
        ("4000000000000069", "card_expired", 0),  # declined at once
        ("4000000000000002", "bank_declined", 0),  # do not honour, at once
        ("4000000000009995", "bank_insufficient_funds", 1),  # accepted, declined later
    ],
)
def test_a_declined_top_up_posts_nothing(
    wallet: Wallet, wang: Principal, card: str, code: str, settle_calls: int
) -> None:
    source = add_card(wallet, wang, card)
    operation_id = start(wallet, wang, "top_up", source, 10_000)
    banking.submit_to_provider(wallet, operation_id=operation_id)
    assert wallet.simulator.settle_due() == settle_calls
    failed = operation(wallet.database, operation_id)
    assert (failed.status, failed.failure_code) == ("failed", code)
    assert transfers_of(wallet, failed.reference) == []
    assert balance(wallet.database, wang).balance_minor == 0  # type: ignore[union-attr]
    assert events(wallet, operation_id)[-1] == f"failed:{code}"


def test_timeout_then_late_success_credits_once(wallet: Wallet, wang: Principal) -> None:
    source = add_card(wallet, wang, "4000 0000 0000 0408")
    operation_id = start(wallet, wang, "top_up", source, 7_000)
    banking.submit_to_provider(wallet, operation_id=operation_id)  # the bank's answer is lost
    waiting = operation(wallet.database, operation_id)
    assert (waiting.status, waiting.provider_stage) == ("pending", "created")
    assert events(wallet, operation_id) == ["created", "provider_silent:provider_timeout"]
    # Asking again with the same reference finds the payment the bank already has.
    banking.submit_to_provider(wallet, operation_id=operation_id)
    assert operation(wallet.database, operation_id).provider_stage == "submitted"
    wallet.simulator.settle_due()
    assert operation(wallet.database, operation_id).status == "completed"
    assert balance(wallet.database, wang).balance_minor == 7_000  # type: ignore[union-attr]
    assert wallet.database.run(
        lambda s: s.scalar(select(Transfer.id).where(Transfer.reference == waiting.reference))
    )


def test_a_duplicate_callback_moves_money_once(wallet: Wallet, wang: Principal) -> None:
    done = top_up(wallet, wang, amount_minor=4_000, card="4000000000000259")
    assert done.status == "completed"
    assert wallet.simulator.settle_due(now=utc_now() + timedelta(seconds=5)) == 1  # the repeat
    assert balance(wallet.database, wang).balance_minor == 4_000  # type: ignore[union-attr]
    assert transfers_of(wallet, done.reference) == ["posted"]
    # A callback for a reference purse never made is ignored, not an error.
    stray = Event(
        event_id="evt_x",
        reference="PWNOTOURS000",
        provider_reference="p",
        status=AnswerStatus.succeeded,
    )
    assert wallet.funding.deliver("simulator", stray) == "unknown"


def test_withdrawal_holds_then_posts(wallet: Wallet, wang: Principal) -> None:
    top_up(wallet, wang, amount_minor=20_000)
    source = wallet.database.run(
        lambda s: funding_service.add_funding_source(
            s,
            funding=wallet.funding,
            cipher=wallet.identity.cipher,
            principal=wang,
            bank_account=BankAccountDetails(
                bank_name="Bank of  China",
                account_number="6222 0210 0112 3456",
                holder_name="Wang Wei",
            ),
        )
    )
    assert (source.brand, source.last4, source.kind) == ("Bank of China", "3456", "bank_account")
    operation_id = start(wallet, wang, "withdrawal", source.id, 15_000)
    held = balance(wallet.database, wang)
    assert (held.balance_minor, held.available_minor) == (20_000, 5_000)  # type: ignore[union-attr]
    with pytest.raises(PurseError) as short:
        start(wallet, wang, "withdrawal", source.id, 5_001)
    assert short.value.code == "insufficient_funds"
    banking.submit_to_provider(wallet, operation_id=operation_id)
    wallet.simulator.settle_due()
    done = operation(wallet.database, operation_id)
    assert done.status == "completed"
    assert transfers_of(wallet, done.reference) == ["pending", "post_pending"]
    after = balance(wallet.database, wang)
    assert (after.balance_minor, after.available_minor) == (5_000, 5_000)  # type: ignore[union-attr]
    assert events(wallet, operation_id) == ["created", "held", "submitted", "posted"]


@pytest.mark.parametrize(
    ("card", "settle_calls"), [("4000000000000002", 0), ("4000000000009995", 1)]
)
def test_a_failed_withdrawal_releases_its_hold(
    wallet: Wallet, wang: Principal, card: str, settle_calls: int
) -> None:
    top_up(wallet, wang, amount_minor=20_000)
    source = add_card(wallet, wang, card)
    operation_id = start(wallet, wang, "withdrawal", source, 12_000)
    banking.submit_to_provider(wallet, operation_id=operation_id)
    assert wallet.simulator.settle_due() == settle_calls
    failed = operation(wallet.database, operation_id)
    assert failed.status == "failed"
    assert transfers_of(wallet, failed.reference) == ["pending", "void_pending"]
    after = balance(wallet.database, wang)
    assert (after.balance_minor, after.available_minor) == (20_000, 20_000)  # type: ignore[union-attr]
    assert events(wallet, operation_id)[-2:] == ["voided", f"failed:{failed.failure_code}"]


@pytest.mark.parametrize("expiry_job_ran_first", [False, True])
def test_a_payout_reported_after_its_hold_ran_out_is_taken_once(
    database_url: str, expiry_job_ran_first: bool
) -> None:
    """Found by the holds race: the bank's "paid" after the hold's expiry answered 409,
    leaving the money paid out by the bank and back in the wallet."""
    database = Database(
        make_settings(database_url, simulator_settle_seconds=0, withdrawal_hold_seconds=60)
    )
    wallet = assemble(database.settings, database=database).wallet
    try:
        wang = make_user(database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
        top_up(wallet, wang, amount_minor=20_000)
        source = add_card(wallet, wang, "4000000000003220")  # a slow bank
        operation_id = start(wallet, wang, "withdrawal", source, 12_000)
        banking.submit_to_provider(wallet, operation_id=operation_id)
        reference = operation(database, operation_id).reference
        after_expiry = utc_now() + timedelta(seconds=61)
        if expiry_job_ran_first:
            database.run(lambda s: ledger.expire_overdue_holds(s, now=after_expiry))
        answer = database.run(
            lambda s: banking.handle_provider_event(
                s,
                wallet=wallet,
                provider_name="simulator",
                event=Event(
                    event_id="late-1",
                    reference=reference,
                    provider_reference="bank-1",
                    status=AnswerStatus.succeeded,
                ),
                now=after_expiry,
            )
        )
        paid = operation(database, operation_id)
        assert (answer, paid.status) == ("applied", "completed")
        # The hold's release (by the job or by the callback) is the ledger's, without a reference.
        assert transfers_of(wallet, reference) == ["pending", "posted"]
        assert balance(database, wang).balance_minor == 8_000  # type: ignore[union-attr]
        assert "expired" in events(wallet, operation_id)
        report = database.run(
            lambda s: verify_ledger(s, hold_expiry_grace_seconds=10**9), write=False
        )
        assert report.ok, report.problems
    finally:
        database.dispose()


def test_follow_up_submits_what_a_crash_left_behind(wallet: Wallet, wang: Principal) -> None:
    source = add_card(wallet, wang)
    operation_id = start(wallet, wang, "top_up", source, 3_000)  # then the process died
    later = utc_now() + timedelta(seconds=31)
    assert (
        banking.follow_up_provider_operations(wallet, now=utc_now()) == 0
    )  # not quiet long enough
    assert banking.follow_up_provider_operations(wallet, now=later) == 1
    assert operation(wallet.database, operation_id).provider_stage == "submitted"
    # The callback is lost too; the next follow-up asks the provider for the status.
    wallet.simulator.deliver = None
    wallet.simulator.settle_due()
    assert operation(wallet.database, operation_id).status == "pending"
    # Asked too soon after the last try: it waits (the wait doubles after each try).
    assert banking.follow_up_provider_operations(wallet, now=later + timedelta(seconds=31)) == 0
    assert banking.follow_up_provider_operations(wallet, now=later + timedelta(seconds=61)) == 1
    assert operation(wallet.database, operation_id).status == "completed"
    assert balance(wallet.database, wang).balance_minor == 3_000  # type: ignore[union-attr]


def test_giving_up_on_a_silent_bank_releases_the_hold(database_url: str) -> None:
    database = Database(
        make_settings(database_url, simulator_settle_seconds=3600, provider_attempts_max=1)
    )
    wallet = assemble(database.settings, database=database).wallet
    try:
        wang = make_user(database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
        top_up_id = start(wallet, wang, "top_up", add_card(wallet, wang), 9_000)
        banking.submit_to_provider(wallet, operation_id=top_up_id)
        database.run(
            lambda s: banking.apply_answer(
                s,
                wallet=wallet,
                operation_id=top_up_id,
                answer=Answer(status=AnswerStatus.succeeded, provider_reference="r"),
            )
        )
        source = add_card(wallet, wang, "4000000000000408")
        operation_id = start(wallet, wang, "withdrawal", source, 5_000)
        banking.submit_to_provider(wallet, operation_id=operation_id)  # times out
        moment = utc_now()
        for seconds in (31, 92):
            banking.follow_up_provider_operations(wallet, now=moment + timedelta(seconds=seconds))
        failed = operation(database, operation_id)
        assert (failed.status, failed.failure_code) == ("failed", "provider_timeout")
        assert balance(database, wang).available_minor == 9_000  # type: ignore[union-attr]
        # The bank pays out after all: the amount is taken from the wallet, once.
        payment_settles = utc_now() + timedelta(hours=3)
        wallet.simulator.settle_due(now=payment_settles)
        late = operation(database, operation_id)
        assert late.status == "completed"
        assert balance(database, wang).balance_minor == 4_000  # type: ignore[union-attr]
        assert transfers_of(wallet, late.reference) == ["pending", "void_pending", "posted"]
        report = database.run(
            lambda s: verify_ledger(s, hold_expiry_grace_seconds=10**9), write=False
        )
        assert report.ok, report.problems
    finally:
        database.dispose()


def test_funding_sources_keep_no_full_number_and_are_per_user(
    wallet: Wallet, wang: Principal
) -> None:
    zhang = make_user(wallet.database, wallet.identity, handle="zhang_li", display_name="Zhang Li")
    source_id = add_card(wallet, wang, "4111 1111 1111 1111")
    stored = wallet.database.run(lambda s: s.get_one(FundingSource, source_id), write=False)
    assert (stored.brand, stored.last4, stored.expiry_year) == ("Visa", "1111", 2099)
    row_text = " ".join(str(value) for value in vars(stored).values())
    assert "4111111111111111" not in row_text and "Wang Wei" not in row_text
    assert funding_service.holder_name(wallet.identity.cipher, stored) == "Wang Wei"
    assert "4111" not in repr(CardDetails("4111111111111111", 1, 2030, "x")).replace("****", "")

    before = counts(wallet.database)
    for caller in (zhang,):
        with pytest.raises(PurseError) as other:
            start(wallet, caller, "top_up", source_id, 100)
        assert other.value.code == "funding_source_not_found"
    assert counts(wallet.database) == before
    wallet.database.run(
        lambda s: funding_service.remove_funding_source(
            s, principal=wang, funding_source_id=source_id
        )
    )
    with pytest.raises(PurseError) as removed:
        start(wallet, wang, "top_up", source_id, 100)
    assert removed.value.code == "funding_source_not_found"


@pytest.mark.parametrize(
    ("number", "month", "year", "code"),
    [
        ("4242 4242 4242 4241", 12, 2099, "card_number_invalid"),
        ("4242", 12, 2099, "card_number_invalid"),
        ("4242 4242 4242 4242", 13, 2099, "card_expiry_invalid"),
        ("4242 4242 4242 4242", 1, 2020, "card_expired"),
    ],
)
def test_bad_card_details_are_refused(
    wallet: Wallet, wang: Principal, number: str, month: int, year: int, code: str
) -> None:
    with pytest.raises(PurseError) as refused:
        wallet.database.run(
            lambda s: funding_service.add_funding_source(
                s,
                funding=wallet.funding,
                cipher=wallet.identity.cipher,
                principal=wang,
                card=CardDetails(
                    number=number, expiry_month=month, expiry_year=year, holder_name="W"
                ),
            )
        )
    assert refused.value.code == code
    assert wallet.database.run(lambda s: s.scalar(select(Operation.id)), write=False) is None


def test_follow_ups_back_off_to_an_hour() -> None:
    delays = [banking.follow_up_delay_seconds(n, base_seconds=30) for n in (1, 2, 3, 7, 8, 100)]
    assert delays == [60, 120, 240, 3600, 3600, 3600]
