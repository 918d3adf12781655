"""Reads do not queue behind the writer: authentication and every GET run in read
transactions, so a balance or a page answers while a send holds the write lock.

On SQLite, purse lets one write transaction at a time into the database file (the
writer's turn, ``db_wait_seconds``); a GET that took that turn would wait behind
every send in flight, and answer 503 database_busy when the wait ran out. The test
holds the writer's turn and asks for every GET route that needs no path parameter,
signed in by bearer token and by web cookie.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api_support import Api
from purse.assembly import Purse
from purse.identity.models import User
from purse.identity.sessions import start_session
from purse.web.views import SESSION_COOKIE
from wallet_support import OPERATOR


def get_paths(api: Api) -> list[str]:
    """Every GET route of every domain without a path parameter (API and pages)."""
    purse: Purse = api.client.app.state.purse  # type: ignore[attr-defined]
    return sorted(
        route.path
        for router in purse.routers()
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ()) and "{" not in route.path
    )


def web_cookie(api: Api, handle: str) -> str:
    settings = api.database.settings

    def start(session: Session) -> str:
        user_id = session.scalars(select(User.id).where(User.handle == handle)).one()
        issued, _new = start_session(
            session,
            settings=settings,
            user_id=user_id,
            kind="web",
            user_agent="pytest",
            actor=OPERATOR,
        )
        return issued.token

    return api.database.run(start)


def test_signed_in_reads_answer_while_a_write_holds_the_database(
    api: Api, wang: dict[str, str], zhang: dict[str, str]
) -> None:
    api.top_up(wang, "10.00")
    paths = get_paths(api)
    assert {"/v1/wallet/balances", "/v1/wallet/activity", "/", "/security"} <= set(paths)
    api.database.run(
        lambda s: s.execute(update(User).where(User.handle == "zhang_wei").values(role="admin"))
    )
    admin = api.token("zhang_wei")  # the operator's reads (a refused one is audited: a write)
    web = {"Cookie": f"{SESSION_COOKIE}={web_cookie(api, 'wang_wei')}"}
    answered: dict[str, int] = {}
    with api.database.transaction(write=True):
        for path in paths:
            token = admin if path.startswith("/v1/admin/") else wang
            by_token = api.client.get(path, headers=token, follow_redirects=False)
            by_cookie = api.client.get(path, headers=web, follow_redirects=False)
            answered[path] = max(by_token.status_code, by_cookie.status_code)
    waited = {path: status for path, status in answered.items() if status >= 500}
    assert waited == {}, f"these GETs waited for the writer: {waited}"
