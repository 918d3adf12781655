"""Auth abuse over HTTP: guessing passwords, TOTP codes and reset codes; enumeration.

An attacker with a plain HTTP client against a real server: 200 wrong passwords on
one account, 200 across accounts from one address, 10^4 guesses of TOTP and reset
codes (10^3 at the CI size), a reused TOTP code, and a comparison of the answers
for known and unknown accounts. Codes reach the test the way they reach a user:
by email, through a real SMTP server on 127.0.0.1.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
from harness import FULL, PASSWORD, Server, Summary, size, track

from smtp_support import Inbox

STRIP = {"request_id", "instance", "retry_after_seconds", "title", "detail"}


def sign_up_verified(http: httpx.Client, inbox: Inbox, handle: str) -> str:
    """A new account with a verified email, made over HTTP like a user does; its email."""
    email = f"{handle}@example.com"
    response = http.post(
        "/v1/auth/signup",
        json={
            "handle": handle,
            "display_name": handle.title(),
            "password": PASSWORD,
            "locale": "en",
            "email": email,
        },
    )
    assert response.status_code == 202, response.text
    code = wait_for_code(inbox, email)
    verified = http.post(
        "/v1/auth/verify", json={"identifier": email, "channel": "email", "code": code}
    )
    assert verified.status_code == 200, verified.text
    return email


def wait_for_code(inbox: Inbox, email: str, *, after: int = 0) -> str:
    """The newest code sent to ``email`` once there are more than ``after`` of them."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        codes = inbox.codes(email)
        if len(codes) > after:
            return codes[-1]
        time.sleep(0.1)
    raise AssertionError(f"no code reached {email}")


def sign_in(http: httpx.Client, identifier: str, password: str, **extra: Any) -> httpx.Response:
    return http.post(
        "/v1/auth/token", json={"identifier": identifier, "password": password, **extra}
    )


def shape(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    """What an attacker can compare: status and body, minus per-request fields."""
    return response.status_code, {k: v for k, v in response.json().items() if k not in STRIP}


def start(database_url: str, name: str, inbox: Inbox, **env: str) -> Server:
    return Server(database_url, name, env={"PURSE_SMTP_URL": inbox.url, **env}).start()


def test_password_guessing_is_throttled_then_locked(database_url: str, database_kind: str) -> None:
    with Inbox() as inbox:
        server = start(database_url, f"auth-password-{database_kind}", inbox)
        try:
            http = track(httpx.Client(base_url=server.url, timeout=30))
            email = sign_up_verified(http, inbox, "victim")
            statuses: Counter[int] = Counter()
            evaluated_before_throttle = 0
            for guess in range(200):
                response = sign_in(http, "victim", f"guess-{guess:04d}-wrong")
                statuses[response.status_code] += 1
                if response.status_code == 429 and not evaluated_before_throttle:
                    evaluated_before_throttle = statuses[401]
            # The owner's own password is refused while the guessing is throttled.
            owner_while_throttled = sign_in(http, "victim", PASSWORD).status_code
            # At full size, the attacker waits out every back-off: the account locks at 10.
            locked_after = None
            if FULL:
                failures = statuses[401]
                deadline = time.monotonic() + 300
                while failures < 10 and time.monotonic() < deadline:
                    response = sign_in(http, "victim", "patient-guess-wrong")
                    if response.status_code == 429:
                        time.sleep(int(response.headers["retry-after"]))
                        continue
                    failures += 1
                locked_after = failures
            owner_after = sign_in(http, "victim", PASSWORD)
            lock_emails: list[Any] = []
            waited = time.monotonic() + (15 if FULL else 0)
            while True:  # the relay sends within a second or two
                lock_emails = [m for m in inbox.received(email) if "locked" in str(m["Subject"])]
                if lock_emails or time.monotonic() > waited:
                    break
                time.sleep(0.2)
        finally:
            server.stop()
    record = Summary(
        "auth_password_guessing",
        database_kind,
        {
            "guesses": 200,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "evaluated_before_throttle": evaluated_before_throttle,
            "evaluated": statuses[401],
            "throttled_429": statuses[429],
            "owner_while_throttled": owner_while_throttled,
            "failures_until_locked": locked_after,
            "owner_after": owner_after.status_code,
            "lock_emails": len(lock_emails),
            "guessed": statuses[201],
        },
    ).emit()
    assert record["guessed"] == 0 and set(statuses) <= {401, 429}, record
    assert 0 < evaluated_before_throttle <= 10 and record["evaluated"] <= 10, record
    assert owner_while_throttled == 429, record
    if FULL:
        assert locked_after == 10 and owner_after.status_code == 401, record
        assert owner_after.json()["code"] == "invalid_credentials"  # locked looks like wrong
        assert len(lock_emails) == 1, record


def test_guessing_across_accounts_from_one_address_is_throttled(
    database_url: str, database_kind: str
) -> None:
    with Inbox() as inbox:
        server = start(database_url, f"auth-address-{database_kind}", inbox)
        try:
            http = track(httpx.Client(base_url=server.url, timeout=30))
            real = [f"real_{n:02d}" for n in range(5)]
            for handle in real:
                sign_up_verified(http, inbox, handle)
            targets = [*real * 4, *(f"nobody_{n:03d}" for n in range(180))]
            random.Random(3).shuffle(targets)
            statuses: Counter[int] = Counter()
            failures_before_throttle = None
            for handle in targets:
                response = sign_in(http, handle, "spray-password-1")
                statuses[response.status_code] += 1
                if response.status_code == 429 and response.json()["code"] == "login_throttled":
                    if failures_before_throttle is None and statuses[401] >= 100:
                        failures_before_throttle = statuses[401]
            owner = sign_in(http, real[0], PASSWORD)
        finally:
            server.stop()
    record = Summary(
        "auth_address_spraying",
        database_kind,
        {
            "attempts": len(targets),
            "accounts": len(set(targets)),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "failures_before_address_throttle": failures_before_throttle,
            "owner_from_the_same_address": owner.status_code,
            "guessed": statuses[201],
        },
    ).emit()
    assert record["guessed"] == 0 and set(statuses) <= {401, 429}, record
    assert statuses[401] <= 100 and failures_before_throttle == 100, record  # ASVS: <= 100
    assert owner.status_code == 429, record  # the whole address waits


def test_totp_guessing_finds_nothing_and_a_code_works_once(
    database_url: str, database_kind: str
) -> None:
    guesses = size(1_000, 10_000)
    with Inbox() as inbox:
        server = start(database_url, f"auth-totp-{database_kind}", inbox)
        try:
            http = track(httpx.Client(base_url=server.url, timeout=30))
            secrets_by_handle = {}
            for handle in ("target", "owner"):
                sign_up_verified(http, inbox, handle)
                token = sign_in(http, handle, PASSWORD).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                secret = http.post("/v1/me/2fa/totp", headers=auth).json()["secret"]
                confirmed = http.post(
                    "/v1/me/2fa/totp/confirm", headers=auth, json={"code": pyotp.TOTP(secret).now()}
                )
                assert confirmed.status_code == 200, confirmed.text
                secrets_by_handle[handle] = secret

            # The attacker knows the password and guesses the code.
            statuses: Counter[int] = Counter()
            start_at = random.Random(11).randrange(10**6 - guesses)
            for guess in range(start_at, start_at + guesses):
                response = sign_in(http, "target", PASSWORD, second_factor=f"{guess:06d}")
                statuses[response.status_code] += 1
            # Even the right code, once the guessing is throttled, gets nothing.
            right_code = pyotp.TOTP(secrets_by_handle["target"]).at(time.time() + 30)
            right_after_guessing = sign_in(http, "target", PASSWORD, second_factor=right_code)

            # The owner signs in with a fresh code once; the same code again is refused.
            fresh = pyotp.TOTP(secrets_by_handle["owner"]).at(time.time() + 30)
            first_use = sign_in(http, "owner", PASSWORD, second_factor=fresh)
            reuse = sign_in(http, "owner", PASSWORD, second_factor=fresh)
        finally:
            server.stop()
    record = Summary(
        "auth_totp_guessing",
        database_kind,
        {
            "guesses": guesses,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "evaluated": statuses[401],
            "throttled_429": statuses[429],
            "guessed": statuses[201],
            "right_code_after_guessing": right_after_guessing.status_code,
            "first_use": first_use.status_code,
            "reuse": reuse.status_code,
            "reuse_code": reuse.json().get("code"),
        },
    ).emit()
    assert record["guessed"] == 0 and record["evaluated"] <= 10, record
    assert right_after_guessing.status_code in (401, 429), record
    assert first_use.status_code == 201, first_use.text
    assert reuse.status_code == 401 and record["reuse_code"] == "second_factor_invalid", record


def test_reset_code_guessing_finds_nothing_and_a_new_code_keeps_the_count(
    database_url: str, database_kind: str
) -> None:
    guesses = size(1_000, 10_000)
    with Inbox() as inbox:
        # A resend after 1 s instead of 60, so the test need not wait: the count is the point.
        server = start(
            database_url,
            f"auth-reset-{database_kind}",
            inbox,
            PURSE_CODE_RESEND_INTERVAL_SECONDS="1",
        )
        try:
            http = track(httpx.Client(base_url=server.url, timeout=30))
            email = sign_up_verified(http, inbox, "resetme")
            sent_before = len(inbox.codes(email))
            asked = http.post(
                "/v1/auth/password-reset", json={"identifier": email, "channel": "email"}
            )
            assert asked.status_code == 202, asked.text
            real = wait_for_code(inbox, email, after=sent_before)
            body = {"identifier": email, "channel": "email", "new_password": "harbor-velvet-93x"}
            codes: Counter[str] = Counter()
            rng = random.Random(17)
            for _ in range(guesses):
                guess = f"{rng.randrange(10**6):06d}"
                if guess == real:
                    continue  # the attacker does not know it
                response = http.post(
                    "/v1/auth/password-reset/confirm", json={**body, "code": guess}
                )
                codes[f"{response.status_code}:{response.json().get('code')}"] += 1
            right_after_guessing = http.post(
                "/v1/auth/password-reset/confirm", json={**body, "code": real}
            )
            # A new code does not give the attacker five fresh tries.
            time.sleep(1.1)
            again = http.post(
                "/v1/auth/password-reset", json={"identifier": email, "channel": "email"}
            )
            new_code = wait_for_code(inbox, email, after=sent_before + 1)
            new_code_answer = http.post(
                "/v1/auth/password-reset/confirm", json={**body, "code": new_code}
            )
            old_password_still_works = sign_in(http, "resetme", PASSWORD).status_code
        finally:
            server.stop()
    record = Summary(
        "auth_reset_code_guessing",
        database_kind,
        {
            "guesses": sum(codes.values()),
            "answers": dict(sorted(codes.items())),
            "evaluated": codes["422:code_invalid"] + codes["401:code_invalid"],
            "guessed": sum(v for k, v in codes.items() if k.startswith("200")),
            "right_code_after_guessing": right_after_guessing.json().get("code"),
            "new_code_requested": again.status_code,
            "new_code_after_guessing": new_code_answer.json().get("code"),
            "old_password_still_works": old_password_still_works == 201,
        },
    ).emit()
    assert record["guessed"] == 0, record
    assert record["evaluated"] < 5, record  # the fifth wrong try ends the code
    assert record["right_code_after_guessing"] == "code_attempts_exceeded", record
    assert record["new_code_after_guessing"] == "code_attempts_exceeded", record
    assert record["old_password_still_works"], record


def test_known_and_unknown_accounts_get_the_same_answers(
    database_url: str, database_kind: str
) -> None:
    with Inbox() as inbox:
        server = start(database_url, f"auth-enumeration-{database_kind}", inbox)
        try:
            http = track(httpx.Client(base_url=server.url, timeout=30))
            email = sign_up_verified(http, inbox, "known")
            pairs: dict[str, tuple[Callable[[], httpx.Response], Callable[[], httpx.Response]]] = {
                "sign_in_handle": (
                    lambda: sign_in(http, "known", "wrong-password-1"),
                    lambda: sign_in(http, "unknown_person", "wrong-password-1"),
                ),
                "sign_in_email": (
                    lambda: sign_in(http, email, "wrong-password-2"),
                    lambda: sign_in(http, "nobody@example.com", "wrong-password-2"),
                ),
                "password_reset": (
                    lambda: http.post(
                        "/v1/auth/password-reset", json={"identifier": email, "channel": "email"}
                    ),
                    lambda: http.post(
                        "/v1/auth/password-reset",
                        json={"identifier": "nobody@example.com", "channel": "email"},
                    ),
                ),
                "code_request": (
                    lambda: http.post(
                        "/v1/auth/codes", json={"identifier": email, "channel": "email"}
                    ),
                    lambda: http.post(
                        "/v1/auth/codes",
                        json={"identifier": "nobody@example.com", "channel": "email"},
                    ),
                ),
                "sign_up_taken_email": (
                    lambda: http.post(
                        "/v1/auth/signup",
                        json={
                            "handle": "someone_new",
                            "display_name": "Someone",
                            "password": PASSWORD,
                            "email": email,
                        },
                    ),
                    lambda: http.post(
                        "/v1/auth/signup",
                        json={
                            "handle": "someone_else",
                            "display_name": "Someone",
                            "password": PASSWORD,
                            "email": "fresh@example.com",
                        },
                    ),
                ),
            }
            differ: dict[str, Any] = {}
            seconds: dict[str, list[float]] = {"known": [], "unknown": []}
            for name, (known, unknown) in pairs.items():
                started = time.perf_counter()
                known_answer = known()
                seconds["known"].append(time.perf_counter() - started)
                started = time.perf_counter()
                unknown_answer = unknown()
                seconds["unknown"].append(time.perf_counter() - started)
                if shape(known_answer) != shape(unknown_answer):
                    differ[name] = [shape(known_answer), shape(unknown_answer)]
        finally:
            server.stop()
    record = Summary(
        "auth_enumeration",
        database_kind,
        {
            "pairs_compared": len(pairs),
            "answers_that_differ": len(differ),
            "differences": differ,
            # Reported, not asserted: one request each on a shared machine.
            "median_seconds_known": round(statistics.median(seconds["known"]), 4),
            "median_seconds_unknown": round(statistics.median(seconds["unknown"]), 4),
        },
    ).emit()
    assert record["answers_that_differ"] == 0, record
