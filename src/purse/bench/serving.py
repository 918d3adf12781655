"""Servers for ``purse bench http``: a real ``purse serve`` and the floor, each a subprocess.

Each listens on 127.0.0.1 on a free port, writes its log to a file (shown when it fails to
start), and is stopped with SIGTERM, then SIGKILL if it does not stop within a bound. Its
CPU time is read from ``/proc`` (Linux), so the bench can say how much CPU a request cost
the server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

START_SECONDS_MAX: Final = 60.0

STOP_SECONDS_MAX: Final = 20.0

LOG_TAIL_CHARACTERS: Final = 3_000

QUIET_SECONDS_MAX: Final = 30.0

QUIET_WINDOW_SECONDS: Final = 1.0

QUIET_CORE_SHARE_MAX: Final = 0.1

_POLL_SECONDS: Final = 0.1


class ServerFailed(RuntimeError):
    """A bench server did not start, or stopped on its own; the message ends with its log."""


@dataclass(frozen=True, slots=True)
class Running:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def cpu_seconds(self) -> float | None:
        """User and system CPU the server has used so far, its processes' sum (None off
        Linux): with ``--workers N`` the requests are served by the server's children."""
        own = _process_cpu_seconds(self.process.pid)
        if own is None:
            return None
        return own + sum(_process_cpu_seconds(pid) or 0.0 for pid in _descendants(self.process.pid))

    def rss_bytes(self) -> int | None:
        """Resident memory of the server's processes, summed (None off Linux)."""
        own = _process_rss_bytes(self.process.pid)
        if own is None:
            return None
        return own + sum(_process_rss_bytes(pid) or 0 for pid in _descendants(self.process.pid))

    def wait_until_quiet(self) -> float:
        """Wait (a bounded time) until the server uses under a tenth of a core; the seconds waited.

        purse's background jobs (the outbox relay above all) go on after a level ends.
        """
        started = time.monotonic()
        while time.monotonic() - started < QUIET_SECONDS_MAX:
            before = self.cpu_seconds()
            time.sleep(QUIET_WINDOW_SECONDS)
            after = self.cpu_seconds()
            if before is None or after is None:
                break  # no /proc: the window's pause is all there is
            if (after - before) / QUIET_WINDOW_SECONDS < QUIET_CORE_SHARE_MAX:
                break
        return time.monotonic() - started

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ServerFailed(
                f"the server stopped (exit {self.process.returncode})\n{_tail(self.log_path)}"
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def purse_serve_command(port: int, workers: int = 1) -> list[str]:
    """``purse serve`` itself, with its background jobs, as an operator runs it."""
    command = [sys.executable, "-m", "purse.cli", "serve", "--host", "127.0.0.1"]
    return [*command, "--port", str(port), "--workers", str(workers)]


def floor_command(port: int, workers: int = 1) -> list[str]:
    command = [sys.executable, "-m", "purse.bench.floor", "--host", "127.0.0.1"]
    return [*command, "--port", str(port), "--workers", str(workers)]


def _process_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (proc(5)).
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _process_rss_bytes(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # "VmRSS:   123456 kB"
    return None


def _descendants(pid: int) -> list[int]:
    """The processes started by ``pid`` and by those, from Linux's /proc (bounded depth)."""
    found: list[int] = []
    parents = [pid]
    for _depth in range(4):
        children: list[int] = []
        for parent in parents:
            try:
                listed = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            children.extend(int(child) for child in listed)
        found.extend(children)
        parents = children
    return found


@contextmanager
def serving(
    command_for_port: Callable[[int], list[str]],
    *,
    environment: Mapping[str, str],
    log_path: Path,
) -> Iterator[Running]:
    """Start the server ``command_for_port(port)`` names, wait until it answers, stop it after."""
    port = free_port()
    command = command_for_port(port)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command, stdout=log, stderr=subprocess.STDOUT, env=dict(environment)
        )
    running = Running(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_until_healthy(running)
        yield running
    finally:
        _stop(process)


def _wait_until_healthy(running: Running) -> None:
    deadline = time.monotonic() + START_SECONDS_MAX
    with httpx.Client(base_url=running.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            running.check_alive()
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(_POLL_SECONDS)
    raise ServerFailed(
        f"the server did not answer within {START_SECONDS_MAX:.0f} s\n{_tail(running.log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_SECONDS_MAX)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_SECONDS_MAX)


def _tail(log_path: Path) -> str:
    try:
        text = log_path.read_text("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return text[-LOG_TAIL_CHARACTERS:]
