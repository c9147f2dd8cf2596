"""A real redis-server on a free loopback port, started and stopped by the tests (no mocks)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SKIP_REASON = (
    "no Redis: redis-server is not installed and HUBSIG_REDIS_URL names no reachable server "
    "(.ci/run installs and starts one; locally: apt-get install redis-server)"
)


class RedisServer:
    """One redis-server process that a test can stop and start again on the same port."""

    def __init__(
        self, folder: Path, options: tuple[str, ...] = (), password: str | None = None
    ) -> None:
        self.folder = folder
        self.options = options  # more redis-server options; later ones win
        if password is not None:  # the default user needs it (requirepass)
            self.options = ("--requirepass", password, *options)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        credentials = f":{password}@" if password is not None else ""
        self.url = f"redis://{credentials}127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.folder), *self.options,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while not reachable(self.url):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=20)
            self._process = None


def reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def can_start() -> bool:
    return shutil.which("redis-server") is not None


def shared_url() -> str | None:
    """The server .ci/run started (HUBSIG_REDIS_URL), if it answers."""
    url = os.environ.get("HUBSIG_REDIS_URL")
    return url if url and reachable(url) else None


def require_redis() -> None:
    if not can_start() and shared_url() is None:
        pytest.skip(SKIP_REASON)
