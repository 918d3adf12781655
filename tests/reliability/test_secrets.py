"""Secrets scan: after real use, no password, token, card number, TOTP seed or recovery code,
and no plaintext phone number or email address, is in the database or the server's log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyotp
from harness import PASSWORD, Client, Server, Summary
from sqlalchemy import MetaData, create_engine, select

from purse.db import sqlalchemy_url

CARD = "4111111111111111"
PHONE = "+8613700137000"
EMAIL = "secret.keeper@example.com"


def _rows_as_text(database_url: str) -> str:
    """Every row of every table, as text (what a stolen copy of the database would show)."""
    engine = create_engine(sqlalchemy_url(database_url))
    metadata = MetaData()
    metadata.reflect(engine)
    parts = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                parts.append(
                    " ".join(
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                        for value in row
                    )
                )
    engine.dispose()
    return "\n".join(parts)


def test_no_secret_is_kept_in_plaintext(
    database_url: str, database_kind: str, seeded: Callable[..., None]
) -> None:
    from purse.identity.context import Identity

    seeded(people={"keeper": 1_000})
    # The seeded user gets a phone and email of their own (through the operator's service).
    from sqlalchemy import update

    from factories import make_settings
    from purse.db import Database
    from purse.identity.models import User

    database = Database(make_settings(database_url))
    identity = Identity(database.settings)
    database.run(
        lambda s: s.execute(
            update(User)
            .where(User.handle == "keeper")
            .values(
                phone_encrypted=identity.cipher.encrypt(PHONE, context="identity_users.phone"),
                phone_lookup=identity.cipher.lookup(PHONE, context="identity_users.phone"),
                email_encrypted=identity.cipher.encrypt(EMAIL, context="identity_users.email"),
                email_lookup=identity.cipher.lookup(EMAIL, context="identity_users.email"),
            )
        )
    )
    database.dispose()

    with Server(database_url, f"secrets-{database_kind}") as server:
        client = Client(server.url, "keeper")
        pair = client.http.post(
            "/v1/auth/token", json={"identifier": EMAIL, "password": PASSWORD}
        ).json()
        tokens = [pair["access_token"], pair["refresh_token"]]
        client.call(
            "POST",
            "/v1/wallet/funding-sources",
            json={
                "kind": "card",
                "number": CARD,
                "expiry_month": 1,
                "expiry_year": 2099,
                "holder_name": "Keeper",
            },
        )
        client.call(
            "POST",
            "/v1/wallet/funding-sources",  # a refused card is not logged either
            json={
                "kind": "card",
                "number": CARD[:-1] + "2",
                "expiry_month": 1,
                "expiry_year": 2099,
                "holder_name": "Keeper",
            },
        )
        enrolment = client.call("POST", "/v1/me/2fa/totp").body
        secret = enrolment["secret"]
        codes = client.call(
            "POST", "/v1/me/2fa/totp/confirm", json={"code": pyotp.TOTP(secret).now()}
        ).body["recovery_codes"]
        client.http.post("/v1/auth/password-reset", json={"identifier": PHONE, "channel": "sms"})
        client.http.post(
            "/v1/auth/token", json={"identifier": "keeper", "password": "wrong-" + PASSWORD}
        )
        client.close()
        log = server.log_text()

    needles = {
        "password": PASSWORD,
        "card_number": CARD,
        "refused_card_number": CARD[:-1] + "2",
        "access_token": tokens[0],
        "refresh_token": tokens[1],
        "totp_secret": secret,
        "phone": PHONE,
        "email": EMAIL,
        **{f"recovery_code_{i}": code for i, code in enumerate(codes)},
    }
    haystacks = {"database_rows": _rows_as_text(database_url), "server_log": log}
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal"):
            file = Path(str(path) + suffix)
            if file.exists():
                haystacks[f"sqlite_file{suffix}"] = file.read_bytes().decode("latin-1")
    hits = [
        f"{name} in {where}"
        for name, needle in needles.items()
        for where, text in haystacks.items()
        if needle in text or needle.replace("-", "") in text
    ]
    Summary(
        "secrets_scan",
        database_kind,
        {"secrets": len(needles), "places": sorted(haystacks), "hits": len(hits)},
    ).emit()
    assert len(codes) == 10 and tokens[0].startswith("pat_")
    # The scan can see: the handle is stored in plaintext by design, and it is found.
    assert all(
        "keeper" in haystacks[where]
        for where in ("database_rows", "sqlite_file")
        if where in haystacks
    )
    assert "/v1/wallet/funding-sources" in haystacks["server_log"]  # and the log is the request log
    assert not hits, hits
