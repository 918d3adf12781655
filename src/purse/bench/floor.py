"""The floor of ``purse bench http``: purse's own app and server, plus one route that does nothing.

Run as ``python -m purse.bench.floor --host 127.0.0.1 --port N`` by the bench, never by
``purse serve``: the no-op route exists only in this process. Everything else is what
``purse serve`` runs: ``create_app`` (the same middleware stack: security headers, request
id and access log, the bounded body reader, the control-character guard, admission) served
by ``purse.server.server_config``. The route is a sync ``def``, as purse's routes are, so it
takes the same hop to the thread pool, and it parses the same body a send does. What
separates a send from this floor is then purse's work on it: authentication, idempotency,
limits, the ledger, the outbox and the audit log.

Background jobs are not run here: the floor does no work for them to follow up. The heap
is settled after start-up as ``purse serve`` settles its own (``purse.server.settle_heap``).
"""

from __future__ import annotations

import argparse
from typing import Final

import uvicorn
from fastapi import FastAPI, status
from pydantic import BaseModel

from purse.app import create_app
from purse.logs import configure_logging
from purse.server import server_config, settle_heap
from purse.settings import Settings
from purse.wallet.schemas import TransferCreate

NOOP_PATH: Final = "/bench/noop"


class NoopRead(BaseModel):
    status: str


def floor_app(settings: Settings) -> FastAPI:
    """purse's app with the no-op route added (routes are matched after purse's own)."""
    app = create_app(settings)

    @app.post(NOOP_PATH, status_code=status.HTTP_201_CREATED, include_in_schema=False)
    def noop(body: TransferCreate) -> NoopRead:
        """Parse a send's body and answer, doing nothing else."""
        return NoopRead(status="ok")

    return app


def floor_app_of_a_server_process() -> FastAPI:
    """The floor app of one of several processes (``--workers N``), as purse serve's are."""
    settings = Settings()
    configure_logging(settings.log_level)
    app = floor_app(settings)
    settle_heap()  # as purse serve's processes do
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_level)
    if options.workers > 1:  # as purse serve --workers N: processes on one socket
        from uvicorn.supervisors import Multiprocess

        config = server_config(
            "purse.bench.floor:floor_app_of_a_server_process",
            settings,
            host=options.host,
            port=options.port,
        )
        config.factory, config.workers = True, options.workers
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    config = server_config(floor_app(settings), settings, host=options.host, port=options.port)
    server = uvicorn.Server(config)
    settle_heap()
    server.run()
    if not server.started:
        raise SystemExit(3)


if __name__ == "__main__":
    main()
