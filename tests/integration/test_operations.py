"""The shared money record: kinds that domains register, access through helpers, an honest demo."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from factories import make_settings
from purse import demo
from purse.assembly import Purse
from purse.db import Database
from purse.errors import PurseError
from purse.identity import access
from purse.identity.models import User
from purse.identity.principal import Principal
from purse.jobs import Job, Lane
from purse.ledger.models import Transfer
from purse.ledger.verify import VerifyReport
from purse.models import utc_now
from purse.operations import kinds
from purse.operations.models import Operation
from purse.operations.queries import operation_for, view_of
from purse.operations.schemas import OperationRead
from purse.operations.verify import check_operations
from purse.wallet import service
from purse.wallet.context import Wallet
from purse.workers.runner import JobRunner
from wallet_support import OPERATOR, make_user, signed_in, top_up, web_session

# The statements of one send (see the test that counts them); a new one must earn its place.
SEND_STATEMENTS_MAX = 17


@pytest.fixture
def wallet(purse: Purse) -> Wallet:
    return purse.wallet


def send(wallet: Wallet, sender: Principal, to: str, amount_minor: int) -> Operation:
    result = wallet.database.run(
        lambda s: service.send(
            s,
            wallet=wallet,
            principal=sender,
            to=to,
            asset="CNY",
            amount_minor=amount_minor,
            note=None,
            idempotency_key=str(uuid.uuid4()),
        )
    )
    return result.operation


def test_a_send_answers_from_what_it_wrote_as_a_later_read_would(wallet: Wallet) -> None:
    """The answer to a send is built from the rows the use case wrote (its timeline, the
    people it read), not read back; a read in a later transaction must see the same."""
    wang = make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    make_user(wallet.database, wallet.identity, handle="zhang_li", display_name="Zhang Li")
    top_up(wallet, wang, amount_minor=5_000)
    send(wallet, wang, "zhang_li", 100)  # opens zhang's wallet: the send below is an everyday one
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(" ".join(statement.split()[:4]))

    def send_and_answer(session: Session) -> OperationRead:
        result = service.send(
            session,
            wallet=wallet,
            principal=wang,
            to="zhang_li",
            asset="CNY",
            amount_minor=1_250,
            note="noodles",
            idempotency_key=str(uuid.uuid4()),
        )
        view = view_of(session, operation=result.operation, user_id=wang.wallet_user_id)
        return OperationRead.of(view, wallet.assets, "en")

    event.listen(wallet.database.engine, "before_cursor_execute", count)
    try:
        answered = wallet.database.run(send_and_answer)
    finally:
        event.remove(wallet.database.engine, "before_cursor_execute", count)
    read = wallet.database.run(
        lambda s: operation_for(s, principal=wang, reference=answered.reference), write=False
    )
    assert answered == OperationRead.of(read, wallet.assets, "en")
    assert [entry.event for entry in answered.timeline] == ["created", "posted"]
    assert answered.counterparty is not None and answered.counterparty.handle == "zhang_li"
    # What a send costs the database, the transaction's own statements aside: each person
    # read once, limits in one read, both accounts in one, the operation written once.
    work = [
        s for s in statements if s.split()[0] not in {"BEGIN", "SAVEPOINT", "RELEASE", "COMMIT"}
    ]
    assert len(work) <= SEND_STATEMENTS_MAX, "\n".join(work)


def test_a_completed_send_stays_out_of_the_session_and_is_written(wallet: Wallet) -> None:
    """A send is written final: returned as written, with no ORM object left in the session
    for every later statement to check, and its row there for the rest of the transaction."""
    wang = make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    make_user(wallet.database, wallet.identity, handle="zhang_li", display_name="Zhang Li")
    top_up(wallet, wang, amount_minor=5_000)

    def send_and_look(session: Session) -> tuple[bool, str, str]:
        operation = service.send(
            session,
            wallet=wallet,
            principal=wang,
            to="zhang_li",
            asset="CNY",
            amount_minor=300,
            note=None,
            idempotency_key=str(uuid.uuid4()),
        ).operation
        row = session.get_one(Operation, operation.id)
        return operation in session, row.reference, row.status

    in_session, reference, status = wallet.database.run(send_and_look)
    assert not in_session
    assert status == "completed" and reference.startswith("P")


def test_an_operation_is_built_as_written_first_thing_in_a_fresh_process() -> None:
    """A restarted server's first request may be a send: building its operation must not
    rely on anything having configured the ORM's mappers before (it did once: a 500)."""
    script = (
        "from purse.operations.service import operation_as_written\n"
        "operation = operation_as_written({'kind': 'send', 'amount_minor': 7}, 5)\n"
        "print(operation.id, operation.kind, operation.amount_minor)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "send", "7"]


def test_a_kind_no_domain_registered_is_refused_and_reported(wallet: Wallet) -> None:
    with pytest.raises(kinds.UnknownOperationKind):
        kinds.get("teleport")
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register(kinds.OperationKind("send", "Other", kinds.Direction.incoming))
    wang = make_user(wallet.database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    make_user(wallet.database, wallet.identity, handle="li_na", display_name="Li Na")
    top_up(wallet, wang, amount_minor=5_000)
    sent = send(wallet, wang, "li_na", 1_000)
    # A row written with a kind nobody registers (by hand, or by a removed domain) is found.
    wallet.database.run(
        lambda s: s.execute(
            update(Operation).where(Operation.id == sent.id).values(kind="teleport")
        )
    )
    report = VerifyReport()
    wallet.database.run(lambda s: check_operations(s, report), write=False)
    # Its money no longer counts as spending either: the running totals disagree.
    assert [problem.check for problem in report.problems] == ["operation_kinds", "spending_totals"]
    wallet.database.run(
        lambda s: s.execute(update(Operation).where(Operation.id == sent.id).values(kind="send"))
    )


def test_an_agent_reads_a_history_only_while_a_case_grants_it(wallet: Wallet) -> None:
    database = wallet.database
    wang = make_user(database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
    make_user(database, wallet.identity, handle="li_na", display_name="Li Na")
    stranger = make_user(database, wallet.identity, handle="zhao_min", display_name="Zhao Min")
    agent_user = make_user(database, wallet.identity, handle="agent_li", display_name="Agent Li")
    database.run(
        lambda s: s.execute(update(User).where(User.id == agent_user.user_id).values(role="agent"))
    )
    top_up(wallet, wang, amount_minor=5_000)
    reference = send(wallet, wang, "li_na", 1_200).reference

    def read(principal: Principal) -> str:
        view = database.run(
            lambda s: operation_for(s, principal=principal, reference=reference), write=False
        )
        return view.direction

    li = database.run(lambda s: s.scalars(select(User.id).where(User.handle == "li_na")).one())
    assert read(wang) == "out" and read(signed_in(database, li)) == "in"  # both parties
    as_agent = Principal.agent(web_session(database, agent_user.user_id or 0), case="case:1")
    assert as_agent.id == f"agent:{agent_user.user_id}/case:1"
    for outsider in (stranger, as_agent):
        with pytest.raises(PurseError) as hidden:
            read(outsider)
        assert hidden.value.code == "operation_not_found"  # not "forbidden": nothing to learn
    grant = database.run(
        lambda s: access.grant_access(
            s,
            grantee_user_id=agent_user.user_id or 0,
            grantee_role="agent",
            subject_user_id=wang.user_id or 0,
            permission=access.Permission.read_history,
            reason="case:1",
            seconds=3600,
            actor=OPERATOR,
        )
    )
    decision = database.run(
        lambda s: access.decide(
            s,
            principal=as_agent,
            permission=access.Permission.read_history,
            subject_user_id=wang.user_id or 0,
        ),
        write=False,
    )
    assert (decision.allowed, decision.because) == (True, "case:1")
    assert read(as_agent) == "out"  # the agent sees it as its owner does
    # A grant for one user opens nobody else's history, and ends when the case does.
    assert not database.run(
        lambda s: access.decide(
            s,
            principal=as_agent,
            permission=access.Permission.read_history,
            subject_user_id=stranger.user_id or 0,
        ),
        write=False,
    )
    database.run(lambda s: access.end_access(s, grant_id=grant.id, actor=OPERATOR))
    with pytest.raises(PurseError):
        read(as_agent)
    # A role without support work never gets a grant, and an expired one opens nothing.
    with pytest.raises(PurseError) as refused:
        database.run(
            lambda s: access.grant_access(
                s,
                grantee_user_id=stranger.user_id or 0,
                grantee_role="user",
                subject_user_id=wang.user_id or 0,
                permission=access.Permission.read_history,
                reason="case:2",
                seconds=60,
                actor=OPERATOR,
            )
        )
    assert refused.value.code == "permission_denied"
    expired = database.run(
        lambda s: access.grant_access(
            s,
            grantee_user_id=agent_user.user_id or 0,
            grantee_role="agent",
            subject_user_id=wang.user_id or 0,
            permission=access.Permission.read_history,
            reason="case:3",
            seconds=60,
            actor=OPERATOR,
            now=utc_now() - timedelta(minutes=5),
        )
    )
    assert expired.id > grant.id
    with pytest.raises(PurseError):
        read(as_agent)


def test_the_demo_is_truthful_about_who_did_it(purse: Purse) -> None:
    assert demo.seed(purse)
    database = purse.database
    initiators = set(
        database.run(
            lambda s: s.execute(select(Transfer.initiator_kind, Transfer.authenticated_by)).all(),
            write=False,
        )
    )
    # Every transfer the demo made says the demo seeder made it (or, for the shop's
    # captures, the shop's own API key), none claims a session.
    assert ("user_session", "web_session") not in initiators
    assert {kind for kind, _ in initiators} <= {"demo", "system", "merchant_key"}
    assert ("merchant_key", "api_key") in initiators
    assert ("demo", "demo_seeder") in initiators
    operations = database.run(
        lambda s: set(s.scalars(select(Operation.initiator_id)).all()), write=False
    )
    assert operations == {"demo:seed"}


def test_a_slow_lane_never_delays_the_others(purse: Purse) -> None:
    settings = make_settings(purse.settings.database_url, worker_interval_seconds=0.05)
    runs: dict[str, int] = {"expiry": 0}
    release = threading.Event()

    def slow(_database: Database) -> int:
        release.wait(5)  # a statement PDF that takes its time
        return 1

    def quick(_database: Database) -> int:
        runs["expiry"] += 1
        return 0

    local = Database(settings)
    runner = JobRunner(
        local,
        [Job("build_statements", slow, Lane.reports), Job("expire_holds", quick, Lane.ledger)],
    )
    runner.start_threads()
    try:
        deadline = time.monotonic() + 5
        while runs["expiry"] < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runs["expiry"] >= 5, "the ledger lane waited for the reports lane"
        assert set(runner.lanes) == {"reports", "ledger"}
    finally:
        release.set()
        runner.stop()
        local.dispose()
    assert not runner._threads


def test_the_ledger_limits_come_from_settings(database_url: str) -> None:
    """PURSE_TRANSFER_GROUP_SIZE_MAX reaches the ledger: a conversion is a group of three."""
    from purse.assembly import assemble
    from purse.wallet import conversion

    database = Database(
        make_settings(database_url, simulator_settle_seconds=0, transfer_group_size_max=2)
    )
    try:
        wallet = assemble(database.settings, database=database).wallet
        assert wallet.operations.ledger_limits.group_size_max == 2
        wang = make_user(database, wallet.identity, handle="wang_wei", display_name="Wang Wei")
        top_up(wallet, wang, amount_minor=100_000)
        database.run(
            lambda s: conversion.set_rate(
                s, base_asset="USD", quote_asset="CNY", rate="7.2", updated_by="tests"
            )
        )
        quote = database.run(
            lambda s: conversion.quote(
                s,
                wallet=wallet,
                principal=wang,
                from_asset="CNY",
                to_asset="USD",
                amount_minor=72_000,
            )
        )
        with pytest.raises(PurseError) as refused:
            database.run(
                lambda s: conversion.convert(
                    s, wallet=wallet, principal=wang, quote_id=quote.id, idempotency_key="fx"
                )
            )
        assert refused.value.code == "transfer_group_too_large"
    finally:
        database.dispose()
