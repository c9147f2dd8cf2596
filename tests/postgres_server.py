"""A real PostgreSQL server for the store tests: ``HUBSIG_POSTGRES_URL`` or a private cluster.

``.ci/run`` starts one on a loopback port and names it in ``HUBSIG_POSTGRES_URL``;
without it, the tests make a throwaway cluster with Debian's ``initdb`` (as the
``postgres`` user when run as root, since PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SKIP_REASON = (
    "no PostgreSQL: psycopg is not installed, or HUBSIG_POSTGRES_URL names no server and "
    "initdb is not installed (.ci/run installs and starts one; locally: apt-get install "
    "postgresql and pip install 'hubsig[postgres]')"
)


def shared_url() -> str | None:
    return os.environ.get("HUBSIG_POSTGRES_URL") or None


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def require_postgres() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip(SKIP_REASON)
    if shared_url() is None and _binary("initdb") is None:
        pytest.skip(SKIP_REASON)


class PostgresServer:
    """One private cluster on a free loopback port, trusting local connections."""

    def __init__(self, folder: Path | None = None) -> None:
        # Its own folder under /tmp: pytest's are private to root, and the server runs as postgres.
        self.folder = folder or Path(tempfile.mkdtemp(prefix="hubsig-postgres-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._process: subprocess.Popen[bytes] | None = None

    def _as_owner(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def start(self) -> None:
        data = self.folder / "data"
        if not data.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.folder, "postgres")
            initdb = _binary("initdb")
            assert initdb is not None
            subprocess.run(
                self._as_owner(
                    [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        postgres = _binary("postgres")
        assert postgres is not None
        command = [
            postgres, "-D", str(data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.folder}", "-c", "fsync=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            self._as_owner(command),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not reachable(self.url):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("postgres did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGINT)  # fast shutdown, past runuser
            self._process.wait(timeout=30)
            self._process = None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=1) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False
