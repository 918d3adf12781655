"""The merchants' writers: opening a merchant, and its API keys.

Every change is audited (``purse audit verify`` proves the log). A secret key is
returned once, by the use case that makes it, and stored only as a keyed hash: the
lookup hash of :class:`purse.crypto.FieldCipher`, whose key is not in the database.
Authenticating a key is one look-up by that hash.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from purse.audit.service import Actor, record
from purse.crypto import FieldCipher
from purse.merchants import errors, queries
from purse.merchants.models import Merchant, MerchantApiKey, MerchantMember
from purse.merchants.queries import ApiKeyRecord, Membership
from purse.merchants.rules import (
    KEY_NAME_LENGTH_MAX,
    NAME_LENGTH_MAX,
    KeyMode,
    MemberRole,
    clean_name,
    clean_scopes,
    logo_initial,
    looks_like_secret_key,
    new_secret_key,
)
from purse.models import utc_now

_merchants = cast(Table, Merchant.__table__)
_members = cast(Table, MerchantMember.__table__)
_keys = cast(Table, MerchantApiKey.__table__)

_SECRET_CONTEXT = "merchant_api_keys.secret"  # noqa: S105 - the hash's context, not a secret
# A key's last use is written at most this often: a busy key is not a write per request.
KEY_TOUCH_INTERVAL_SECONDS = 60


def secret_lookup(cipher: FieldCipher, secret: str) -> str:
    return cipher.lookup(secret, context=_SECRET_CONTEXT)


def open_merchant(
    session: Session,
    *,
    user_id: int,
    name_en: str,
    name_zh: str,
    actor: Actor,
    now: datetime | None = None,
) -> Membership:
    """Open a merchant with ``user_id`` as its owner."""
    assert session.in_transaction()
    now = now or utc_now()
    names = {}
    for field, text in (("name_en", name_en), ("name_zh", name_zh)):
        cleaned = clean_name(text, length_max=NAME_LENGTH_MAX)
        if cleaned.value is None:
            raise errors.MerchantNameInvalid(
                field=field, reason=cleaned.reason, length_max=NAME_LENGTH_MAX
            )
        names[field] = cleaned.value
    merchant_id = session.execute(
        insert(_merchants)
        .values(
            **names, logo_initial=logo_initial(names["name_en"]), status="active", created_at=now
        )
        .returning(_merchants.c.id)
    ).scalar_one()
    session.execute(
        insert(_members).values(
            merchant_id=merchant_id, user_id=user_id, role=MemberRole.owner.value, created_at=now
        )
    )
    record(
        session,
        kind="merchant_opened",
        actor=actor,
        subject_user_id=user_id,
        data={"merchant_id": merchant_id},
        now=now,
    )
    merchant = queries.merchant(session, merchant_id=merchant_id)
    return Membership(merchant=merchant, role=MemberRole.owner)


def create_api_key(
    session: Session,
    *,
    cipher: FieldCipher,
    merchant_id: int,
    user_id: int,
    mode: KeyMode,
    name: str,
    scopes: list[str],
    actor: Actor,
    now: datetime | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Make a key; returns it and its secret, which is never shown again."""
    assert session.in_transaction()
    now = now or utc_now()
    cleaned = clean_name(name, length_max=KEY_NAME_LENGTH_MAX)
    if cleaned.value is None:
        raise errors.MerchantNameInvalid(
            field="name", reason=cleaned.reason, length_max=KEY_NAME_LENGTH_MAX
        )
    chosen = clean_scopes(scopes)
    if chosen is None:
        raise errors.ApiKeyScopesInvalid()
    secret = new_secret_key(mode)
    key_id = session.execute(
        insert(_keys)
        .values(
            merchant_id=merchant_id,
            mode=mode.value,
            name=cleaned.value,
            scopes=" ".join(chosen),
            secret_lookup=secret_lookup(cipher, secret),
            last4=secret[-4:],
            created_by_user_id=user_id,
            created_at=now,
        )
        .returning(_keys.c.id)
    ).scalar_one()
    record(
        session,
        kind="merchant_api_key_created",
        actor=actor,
        subject_user_id=user_id,
        data={"merchant_id": merchant_id, "api_key_id": key_id, "mode": mode.value},
        now=now,
    )
    return queries.api_key(session, merchant_id=merchant_id, key_id=key_id), secret


def change_settings(
    session: Session,
    *,
    merchant_id: int,
    user_id: int,
    capture_requires_fulfilment: bool,
    actor: Actor,
    now: datetime | None = None,
) -> Membership:
    """Turn "no charge without fulfilment" on or off (owners only, audited)."""
    assert session.in_transaction()
    now = now or utc_now()
    session.execute(
        update(_merchants)
        .where(_merchants.c.id == merchant_id)
        .values(capture_requires_fulfilment=capture_requires_fulfilment)
    )
    record(
        session,
        kind="merchant_settings_changed",
        actor=actor,
        data={
            "merchant_id": merchant_id,
            "capture_requires_fulfilment": capture_requires_fulfilment,
        },
        now=now,
    )
    return queries.merchant_for_member(
        session, user_id=user_id, merchant_id=merchant_id, permission="merchant:read"
    )


def revoke_api_key(
    session: Session,
    *,
    merchant_id: int,
    key_id: int,
    actor: Actor,
    now: datetime | None = None,
) -> ApiKeyRecord:
    """End a key now. A key that has already ended (revoked, or rolled) is refused."""
    assert session.in_transaction()
    now = now or utc_now()
    _end(session, merchant_id=merchant_id, key_id=key_id, ends_at=now, now=now)
    record(
        session,
        kind="merchant_api_key_revoked",
        actor=actor,
        data={"merchant_id": merchant_id, "api_key_id": key_id},
        now=now,
    )
    return queries.api_key(session, merchant_id=merchant_id, key_id=key_id)


def roll_api_key(
    session: Session,
    *,
    cipher: FieldCipher,
    merchant_id: int,
    key_id: int,
    user_id: int,
    overlap_seconds: int,
    actor: Actor,
    now: datetime | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Replace a key with a new one of the same mode, name and scopes; the old one keeps
    working for ``overlap_seconds`` (0: it ends now), time to deploy the new one."""
    assert session.in_transaction()
    now = now or utc_now()
    old = queries.api_key(session, merchant_id=merchant_id, key_id=key_id)
    if old.ends_at is not None:
        raise errors.ApiKeyEnded()
    new, secret = create_api_key(
        session,
        cipher=cipher,
        merchant_id=merchant_id,
        user_id=user_id,
        mode=KeyMode(old.mode),
        name=old.name,
        scopes=list(old.scopes),
        actor=actor,
        now=now,
    )
    _end(
        session,
        merchant_id=merchant_id,
        key_id=key_id,
        ends_at=now + timedelta(seconds=overlap_seconds),
        now=now,
        rolled_to_id=new.id,
    )
    record(
        session,
        kind="merchant_api_key_rolled",
        actor=actor,
        data={"merchant_id": merchant_id, "api_key_id": key_id, "rolled_to_id": new.id},
        now=now,
    )
    return new, secret


def _end(
    session: Session,
    *,
    merchant_id: int,
    key_id: int,
    ends_at: datetime,
    now: datetime,
    rolled_to_id: int | None = None,
) -> None:
    # One statement decides: two revokes (or a revoke and a roll) racing end the key once.
    ended = session.execute(
        update(_keys)
        .where(
            _keys.c.id == key_id,
            _keys.c.merchant_id == merchant_id,
            _keys.c.ends_at.is_(None),
        )
        .values(ends_at=ends_at, rolled_to_id=rolled_to_id)
    )
    if ended.rowcount != 1:  # type: ignore[attr-defined]
        queries.api_key(session, merchant_id=merchant_id, key_id=key_id)  # not found?
        raise errors.ApiKeyEnded()


def find_api_key(
    session: Session, *, cipher: FieldCipher, secret: str, now: datetime
) -> ApiKeyRecord:
    """The working key of an active merchant whose secret this is; ``api_key_invalid`` if none.

    One read, on every request a merchant's server makes: the caller writes the last use
    with :func:`touch_api_key` when it is due.
    """
    if not looks_like_secret_key(secret):
        raise errors.ApiKeyInvalid()
    row = session.execute(
        select(_keys)
        .join(_merchants, _merchants.c.id == _keys.c.merchant_id)
        .where(
            _keys.c.secret_lookup == secret_lookup(cipher, secret),
            _merchants.c.status == "active",
        )
    ).first()
    if row is None:
        raise errors.ApiKeyInvalid()
    key = queries.api_key_record(row._mapping)
    if not key.works_at(now):
        raise errors.ApiKeyInvalid()
    return key


def touch_due(key: ApiKeyRecord, now: datetime) -> bool:
    return key.last_used_at is None or now - key.last_used_at >= timedelta(
        seconds=KEY_TOUCH_INTERVAL_SECONDS
    )


def touch_api_key(session: Session, *, key_id: int, now: datetime) -> None:
    """Write when the key was last used."""
    session.execute(update(_keys).where(_keys.c.id == key_id).values(last_used_at=now))
