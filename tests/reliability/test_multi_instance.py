"""Two ``purse serve`` and two ``purse worker`` processes on one PostgreSQL, as in production.

Clients send money through both servers; every send tells its recipient by email,
through the outbox. Both workers relay the outbox to a real SMTP server on
127.0.0.1 (aiosmtpd, in this test) while one of them is killed (kill -9) and
restarted now and then: each time 2 to 5 s after it has relayed something since it
last started, so that on a slow machine it is not killed over and over before it
has started at all. Afterwards every acknowledged transfer must have told its
recipient exactly once, within a lease and 20 s of the load ending (a killed
worker's batch waits for its lease to end): the row leases keep the two workers
off each other's messages.

A worker killed between the mail server's "250 OK" and its own commit has sent a
message it could not mark; the next claim sends it again with the same
Message-ID. The test allows at most one such repeat per kill and reports them.

The load is at least ``sends_per_client`` sends per client, and goes on (within
``LOAD_SECONDS_MAX``) until worker 0 has been killed once: a fast purse finishes the
CI size before the first kill is due.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from harness import Client, Server, Summary, Worker, ledger_verify, run_threads, size

from smtp_support import Inbox

# The recipient's notice of a send ("... sent you ¥0.01. Reference PW..."); the payer's own
# notice ("You sent ...") goes out too, and is not the one this test follows.
REFERENCE = re.compile(r"sent you .*Reference (\S+)\.", re.DOTALL)
LEASE_SECONDS = 20
DRAIN_SECONDS = LEASE_SECONDS + 20
# The longest the killer waits for the restarted worker to relay before it gives up.
RELAY_WAIT_SECONDS_MAX = 120
# The longest the load goes on past its sends while no kill has happened yet.
LOAD_SECONDS_MAX = 120


def test_two_servers_and_two_workers_share_one_database(
    database_url: str, database_kind: str, seeded: Callable[..., None]
) -> None:
    if database_kind != "postgres":
        pytest.skip("several processes share a PostgreSQL database; SQLite is one process's")
    people = [f"multi_{index:02d}" for index in range(16)]
    seeded(people=dict.fromkeys(people, 10_000_000), emails=True)
    sends_per_client = size(40, 625)  # 16 x 625 = 10,000 transfers, each an outbox event
    kills = 0
    acknowledged: dict[str, str] = {}  # reference -> recipient handle
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    with Inbox() as inbox:
        env = {
            "PURSE_SMTP_URL": inbox.url,
            "PURSE_OUTBOX_BATCH_SIZE": "50",
            "PURSE_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        servers = [
            Server(database_url, f"multi-{n}", workers=False, env=env).start() for n in range(2)
        ]
        workers = [Worker(database_url, f"multi-worker-{n}", env=env).start() for n in range(2)]
        try:
            clients = [Client(servers[i % 2].url, handle) for i, handle in enumerate(people)]
            load_done = threading.Event()

            def kill_a_worker_now_and_then() -> None:
                nonlocal kills
                rng = random.Random(5)
                log_offset = 0  # where the log of worker 0's current life starts
                while not load_done.is_set():
                    waited_until = time.monotonic() + RELAY_WAIT_SECONDS_MAX
                    while not relayed_by(workers[0], log_offset):
                        if load_done.wait(0.2) or time.monotonic() > waited_until:
                            return
                    if load_done.wait(rng.uniform(2.0, 5.0)):
                        return
                    workers[0].kill()
                    kills += 1
                    log_offset = workers[0].server.log_path.stat().st_size
                    workers[0].start()

            killer = threading.Thread(target=kill_a_worker_now_and_then, daemon=True)
            killer.start()

            def load(index: int) -> None:
                rng = random.Random(index)
                step = 0
                while step < sends_per_client or (
                    kills == 0 and time.monotonic() < started + LOAD_SECONDS_MAX
                ):
                    step += 1
                    to = rng.choice([p for p in people if p != people[index]])
                    call = clients[index].send(to, "0.01", f"multi-{index}-{step}")
                    with lock:
                        counts[call.outcome] += 1
                        if call.outcome == "ok":
                            acknowledged[call.body["reference"]] = to

            started = time.monotonic()
            try:
                run_threads(len(people), load)
            finally:
                load_done.set()
                killer.join(timeout=30)
            seconds = time.monotonic() - started

            # Within DRAIN_SECONDS of the load's end every acknowledged send has told its
            # recipient.
            ended = time.monotonic()
            told: Counter[str] = Counter()
            while time.monotonic() < ended + DRAIN_SECONDS:
                told = Counter(
                    match.group(1)
                    for message in inbox.received()
                    if (match := REFERENCE.search(plain_text(message)))
                    and message["To"].startswith("multi_")
                )
                if all(told[reference] for reference in acknowledged):
                    break
                time.sleep(0.5)
            drained_seconds = time.monotonic() - ended
            # Repeats are counted among the recipients' notices, which told_twice counts too,
            # and among every message (the payers' notices as well), for the kills bound.
            message_ids = Counter(
                str(message["Message-ID"])
                for message in inbox.received()
                if REFERENCE.search(plain_text(message)) and message["To"].startswith("multi_")
            )
            repeats_of_any_message = sum(
                count - 1 for count in inbox.message_ids().values() if count > 1
            )
            wrong_recipient = len(
                [
                    message
                    for message in inbox.received()
                    if (match := REFERENCE.search(plain_text(message)))
                    and match.group(1) in acknowledged
                    and message["To"] != f"{acknowledged[match.group(1)]}@example.com"
                ]
            )
        finally:
            for worker in workers:
                worker.stop()
            for server in servers:
                server.stop()

    relayed = [relayed_by(worker) for worker in workers]
    verify = ledger_verify(database_url)
    record = Summary(
        "multi_instance",
        database_kind,
        {
            "servers": 2,
            "workers": 2,
            "transfers_ok": counts["ok"],
            "transfers_fail": counts["fail"],
            "transfers_unknown": counts["unknown"],
            "emails_received": len(inbox.received()),
            "relayed_by_each_worker": relayed,
            "worker_kills": kills,
            "stuck_after_drain": sum(1 for reference in acknowledged if not told[reference]),
            "told_twice": sum(1 for reference in acknowledged if told[reference] > 1),
            "same_message_id_twice": sum(1 for count in message_ids.values() if count > 1),
            "repeats_of_any_message": repeats_of_any_message,
            "wrong_recipient": wrong_recipient,
            "drained_seconds": round(drained_seconds, 1),
            "seconds": round(seconds, 1),
            "ledger_verify_ok": verify["ok"],
        },
    ).emit()
    assert record["transfers_ok"] >= len(people) * sends_per_client, record
    assert record["transfers_fail"] == record["transfers_unknown"] == 0, record
    assert min(relayed) > 0, "both workers relay: the test is about sharing the outbox"
    assert kills > 0, "worker 0 was never killed: it never relayed while the load ran"
    assert record["stuck_after_drain"] == 0 and record["wrong_recipient"] == 0, record
    # A repeat only ever follows a kill, and carries the first delivery's Message-ID.
    assert record["told_twice"] == record["same_message_id_twice"] <= kills, record
    assert record["repeats_of_any_message"] <= kills, record
    assert verify["ok"], verify["problems"]


def relayed_by(worker: Worker, log_offset: int = 0) -> int:
    """Messages a worker process says it delivered (its JSON log from ``log_offset`` on)."""
    total = 0
    with worker.server.log_path.open("rb") as log:
        log.seek(log_offset)
        text = log.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
        if '"relay_outbox"' in line and '"job.done"' in line:
            try:
                total += int(json.loads(line)["count"])
            except json.JSONDecodeError:  # the last line, while the worker writes it
                continue
    return total


def plain_text(message: EmailMessage) -> str:
    """The plain-text body of an email ("" if it has none)."""
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""
