"""Auth rules over HTTP: the ASVS 5.0 / NIST SP 800-63B-4 items a client can observe.

Each item is checked against a real server, with production cookie settings
(``Secure`` even on 127.0.0.1), and recorded as passed or not; the summary lists
every item, and the test fails if any did not pass.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from http.cookies import SimpleCookie

import httpx
import pyotp
from harness import PASSWORD, Server, Summary, track
from test_auth_abuse import sign_in, sign_up_verified, wait_for_code

from smtp_support import Inbox

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_up(http: httpx.Client, handle: str, password: str) -> httpx.Response:
    return http.post(
        "/v1/auth/signup",
        json={
            "handle": handle,
            "display_name": handle.title(),
            "password": password,
            "email": f"{handle}@example.com",
        },
    )


def cookies_of(response: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


def test_auth_rules(database_url: str, database_kind: str) -> None:
    items: dict[str, bool] = {}
    notes: dict[str, object] = {}

    def check(item: str, passed: bool, note: object = None) -> None:
        items[item] = bool(passed)
        if note is not None and not passed:
            notes[item] = note

    with Inbox() as inbox:
        server = Server(
            database_url,
            f"auth-rules-{database_kind}",
            env={
                "PURSE_SMTP_URL": inbox.url,
                "PURSE_COOKIE_INSECURE_ON_LOCALHOST": "false",
                # A second reset code after 1 s, not 60: the test need not wait.
                "PURSE_CODE_RESEND_INTERVAL_SECONDS": "1",
            },
        ).start()
        try:
            http = track(httpx.Client(base_url=server.url, timeout=30))
            run_password_items(http, check)
            run_session_items(http, inbox, check)
            run_web_items(server.url, check)
        finally:
            server.stop()

    record = Summary(
        "auth_rules",
        database_kind,
        {
            "items": len(items),
            "passed": sum(items.values()),
            "failed": sorted(item for item, ok in items.items() if not ok),
            "notes": notes,
            "checked": sorted(items),
        },
    ).emit()
    assert not record["failed"], record


def run_password_items(http: httpx.Client, check: Callable[..., None]) -> None:
    short = sign_up(http, "len_seven", "k9#Lm2q")
    check(
        "password: 7 characters refused",
        short.status_code == 422 and short.json()["code"] == "password_too_short",
        short.text,
    )
    long_password = ("quiet harbor lantern " * 13)[:256]
    for length, password in (
        (8, "k9#Lm2qZ"),
        (64, ("violet kettle morning " * 3)[:64]),
        (256, long_password),
    ):
        handle = f"len_{length}"
        made = sign_up(http, handle, password)
        signed = sign_in(http, handle, password)
        check(f"password: {length} characters accepted", made.status_code == 202, made.text)
        check(f"password: {length} characters sign in", signed.status_code == 201, signed.text)
    truncated = sign_in(http, "len_256", long_password[:-1])
    check("password: never truncated (255 of 256 refused)", truncated.status_code == 401)
    blocked = sign_up(http, "blocked", "baseball")
    check(
        "password: blocklisted refused",
        blocked.status_code == 422 and blocked.json()["code"] == "password_blocklisted",
        blocked.text,
    )
    spaces = sign_up(http, "spaces", "correct horse battery staple")
    check("password: no composition rules (lowercase words and spaces)", spaces.status_code == 202)
    # NFKC: full-width letters and digits are the same password as their ASCII forms.
    wide = "ｒｉｖｅｒ－ｌａｍｐ－ｑｕｉｅｔ－７４"
    made = sign_up(http, "nfkc", wide)
    check(
        "password: NFKC (full-width == ASCII)",
        made.status_code == 202 and sign_in(http, "nfkc", "river-lamp-quiet-74").status_code == 201,
    )


def run_session_items(http: httpx.Client, inbox: Inbox, check: Callable[..., None]) -> None:
    email = sign_up_verified(http, inbox, "sessions")
    first = sign_in(http, "sessions", PASSWORD).json()
    token = first["access_token"]
    check("session: access token has 128+ bits", len(token) >= 22)
    me = http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    check("session: token works", me.status_code == 200)
    out = http.post("/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    after = http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    check(
        "session: logout ends it on the server", out.status_code == 204 and after.status_code == 401
    )

    pair = sign_in(http, "sessions", PASSWORD).json()
    renewed = http.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    reused = http.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    new_pair = renewed.json()
    dead = http.get("/v1/me", headers={"Authorization": f"Bearer {new_pair['access_token']}"})
    check(
        "session: refresh rotates",
        renewed.status_code == 200 and new_pair["access_token"] != pair["access_token"],
    )
    check(
        "session: a reused refresh token ends the session",
        reused.status_code == 401 and dead.status_code == 401,
    )

    # Reset: the code is single use, and every session ends.
    live = sign_in(http, "sessions", PASSWORD).json()["access_token"]
    sent = len(inbox.codes(email))
    http.post("/v1/auth/password-reset", json={"identifier": email, "channel": "email"})
    code = wait_for_code(inbox, email, after=sent)
    body = {"identifier": email, "channel": "email", "code": code}
    done = http.post(
        "/v1/auth/password-reset/confirm", json={**body, "new_password": "amber-field-lotus-58"}
    )
    again = http.post(
        "/v1/auth/password-reset/confirm", json={**body, "new_password": "second-try-lotus-59"}
    )
    check("reset: code works", done.status_code == 200, done.text)
    check("reset: code is single use", again.status_code in (401, 422), again.text)
    ended = http.get("/v1/me", headers={"Authorization": f"Bearer {live}"})
    check("reset: every session ends", ended.status_code == 401)
    deadline = time.monotonic() + 15  # the relay sends within a second or two
    while not (
        told := [m for m in inbox.received(email) if "password was changed" in m["Subject"]]
    ):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    check("reset: the user is told by email", len(told) == 1, len(told))

    # With 2FA on, a reset needs the second factor too.
    token = sign_in(http, "sessions", "amber-field-lotus-58").json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    secret = http.post("/v1/me/2fa/totp", headers=auth).json()["secret"]
    http.post("/v1/me/2fa/totp/confirm", headers=auth, json={"code": pyotp.TOTP(secret).now()})
    time.sleep(1.1)
    sent = len(inbox.codes(email))
    http.post("/v1/auth/password-reset", json={"identifier": email, "channel": "email"})
    code = wait_for_code(inbox, email, after=sent)
    without = http.post(
        "/v1/auth/password-reset/confirm",
        json={
            "identifier": email,
            "channel": "email",
            "code": code,
            "new_password": "no-2fa-no-reset-77",
        },
    )
    check(
        "reset: never bypasses 2FA",
        without.status_code == 401 and without.json()["code"] == "second_factor_required",
        without.text,
    )


def run_web_items(url: str, check: Callable[..., None]) -> None:
    # A bare client: the server's cookies are Secure, so they are sent back by hand.
    web = track(httpx.Client(base_url=url, timeout=30, follow_redirects=False))
    form = web.get("/signin")
    csrf_cookie = cookies_of(form).get("purse_csrf")
    token = CSRF_FIELD.search(form.text)
    check("csrf: the sign-in form carries a token", csrf_cookie is not None and token is not None)
    if csrf_cookie is None or token is None:
        return
    csrf = csrf_cookie["purse_csrf"]
    check(
        "cookie: CSRF cookie Secure, HttpOnly, SameSite=Strict",
        bool(csrf["secure"]) and bool(csrf["httponly"]) and csrf["samesite"].lower() == "strict",
        str(csrf),
    )
    fields = {"identifier": "len_8", "password": "k9#Lm2qZ"}
    forged = web.post(
        "/signin",
        data={**fields, "csrf_token": "forged"},
        headers={"Cookie": f"purse_csrf={csrf.value}"},
    )
    check("csrf: a wrong token is refused", forged.status_code == 403, forged.status_code)
    missing = web.post("/signin", data=fields)
    check("csrf: no token is refused", missing.status_code == 403, missing.status_code)
    signed = web.post(
        "/signin",
        data={**fields, "csrf_token": token.group(1)},
        headers={"Cookie": f"purse_csrf={csrf.value}"},
    )
    session = cookies_of(signed).get("purse_session")
    check("web: sign-in with the token works", signed.status_code == 303, signed.status_code)
    check(
        "cookie: session cookie Secure, HttpOnly, SameSite=Lax",
        session is not None
        and bool(session["purse_session"]["secure"])
        and bool(session["purse_session"]["httponly"])
        and session["purse_session"]["samesite"].lower() == "lax",
        str(session),
    )
    if session is None:
        return
    value = session["purse_session"].value
    jar = {"Cookie": f"purse_session={value}; purse_csrf={csrf.value}"}
    check("web: the session opens the home page", web.get("/home", headers=jar).status_code == 200)
    by_get = web.get("/signout", headers=jar)
    check(
        "web: no state change on GET (GET /signout does not sign out)",
        by_get.status_code == 405 and web.get("/home", headers=jar).status_code == 200,
        by_get.status_code,
    )
    page = web.get("/home", headers=jar)
    home_token = CSRF_FIELD.search(page.text)
    out = web.post(
        "/signout", data={"csrf_token": home_token.group(1) if home_token else ""}, headers=jar
    )
    after = web.get("/home", headers=jar)
    check(
        "web: sign-out ends the session on the server",
        out.status_code == 303 and after.status_code in (303, 307),
        (out.status_code, after.status_code),
    )
