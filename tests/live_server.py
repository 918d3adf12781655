"""A purse app served by uvicorn in a thread of the test, on 127.0.0.1, configured as
``purse serve`` configures it (``purse.server.server_config``)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from purse.app import create_app
from purse.db import Database
from purse.server import server_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    def __init__(self, database: Database, *, run_workers: bool = False) -> None:
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(database.settings, database=database, run_workers=run_workers)
        config = server_config(app, database.settings, host="127.0.0.1", port=self.port)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the live server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
