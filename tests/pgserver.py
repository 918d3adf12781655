"""A throwaway PostgreSQL server for the test run.

Used when ``PURSE_TEST_POSTGRES_URL`` is not given: ``initdb`` into a temporary
folder and start the server on a unix socket in it (no TCP port at all, so
nothing else on the machine can reach it). PostgreSQL refuses to run as root,
so as root the server runs as the ``postgres`` user through ``runuser``.
``fsync=off`` speeds the suite up and is still safe against a killed process
(only an OS crash would lose data); ``synchronous_commit`` stays on.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
        path = Path(out.stdout.strip())
        if (path / "initdb").exists():
            return path
    raise RuntimeError(
        "PostgreSQL server binaries not found; run scripts/test, which installs them"
    )


@dataclass
class PostgresServer:
    folder: Path
    bindir: Path

    @property
    def socket_dir(self) -> Path:
        return self.folder

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}"

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def start(self) -> None:
        subprocess.run(
            self._as_owner(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-l",
                str(self.folder / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
                "-c max_connections=300 -c shared_buffers=128MB",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            self._as_owner(
                str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", mode, "stop"
            ),
            capture_output=True,
        )

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would."""
        pid_file = self.folder / "data" / "postmaster.pid"
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 9)

    def restart_after_crash(self, timeout_seconds: float = 60) -> None:
        """Start again after :meth:`kill`, with crash recovery.

        The killed postmaster's backends notice its death and exit on their own,
        but until the last one has, the old shared memory is in use and a new
        postmaster refuses to start: so try again until it does.
        """
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                self.start()
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def start_server() -> PostgresServer:
    bindir = find_bindir()
    folder = Path(tempfile.mkdtemp(prefix="purse-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PostgresServer(folder=folder, bindir=bindir)
    subprocess.run(
        server._as_owner(
            str(bindir / "initdb"),
            "-D",
            str(folder / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ),
        check=True,
        capture_output=True,
    )
    server.start()
    return server


def remove_server(server: PostgresServer) -> None:
    server.stop("immediate")
    shutil.rmtree(server.folder, ignore_errors=True)
