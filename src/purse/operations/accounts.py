"""The account map: which ledger account belongs to whom, opened on first use.

Owners are written ``user:<id>`` (a user's wallet) or ``system:<kind>`` (an account
purse itself posts against, one per asset: money on its way to and from banks,
the FX position, FX revenue). Domains add their own owner kinds the same way
(``merchant:<id>``) without a table of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from purse.db import RetryTransaction
from purse.ledger import service as ledger
from purse.operations.models import Operation, OperationAccount
from purse.prepared import Prepared

# Money on its way to or from banks and card processors (may go below zero).
PROVIDER_CLEARING = "provider_clearing"


# Built once: every payment looks up two accounts.
_accounts = cast(Table, OperationAccount.__table__)
_ACCOUNT_OF = select(_accounts.c.account_id).where(
    _accounts.c.owner == bindparam("owner"), _accounts.c.asset == bindparam("asset")
)
_ACCOUNTS_OF = Prepared(
    select(_accounts.c.owner, _accounts.c.account_id).where(
        _accounts.c.owner.in_(bindparam("owners", expanding=True)),
        _accounts.c.asset == bindparam("asset"),
    )
)


def user_owner(user_id: int) -> str:
    return f"user:{user_id}"


def account_id(
    session: Session,
    *,
    owner: str,
    asset: str,
    create: bool = True,
    kind: str | None = None,
    non_negative: bool | None = None,
) -> int | None:
    """The ledger account of ``owner`` in ``asset``, opened on first use when ``create``.

    Users' accounts may not go below zero; system accounts may. A domain's own owner
    kinds say what their account is (``kind``) and whether it may go below zero
    (``non_negative``). Two requests that open the same account at once meet at the
    primary key: the loser runs again and finds the winner's.
    """
    found = session.scalar(_ACCOUNT_OF, {"owner": owner, "asset": asset})
    if found is not None or not create:
        return found
    owner_kind, _, owner_id = owner.partition(":")
    is_user = owner_kind == "user"
    opened = ledger.open_account(
        session,
        asset=asset,
        owner_kind=owner_kind,
        owner_id=owner_id,
        kind=kind or ("wallet" if is_user else owner_id),
        debits_must_not_exceed_credits=is_user if non_negative is None else non_negative,
    )
    session.add(OperationAccount(owner=owner, asset=asset, account_id=opened.id))
    try:
        session.flush()
    except IntegrityError as error:
        raise RetryTransaction() from error  # opened concurrently: the next attempt finds it
    return opened.id


def account_ids(session: Session, *, owners: Sequence[str], asset: str) -> dict[str, int]:
    """The ledger accounts ``owners`` have in ``asset`` (those opened), in one read."""
    rows = _ACCOUNTS_OF.all(session, {"owners": list(owners), "asset": asset})
    return {row.owner: row.account_id for row in rows}


def system_account(session: Session, *, kind: str, asset: str) -> int:
    """The system account ``kind`` in ``asset`` (``PROVIDER_CLEARING``, ...)."""
    found = account_id(session, owner=f"system:{kind}", asset=asset)
    assert found is not None
    return found


def wallet_account(session: Session, operation: Operation) -> int:
    """The wallet an operation's money comes from or goes to (its owner's, in its asset)."""
    found = account_id(session, owner=user_owner(operation.user_id), asset=operation.asset)
    assert found is not None
    return found
