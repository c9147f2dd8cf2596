"""Real engine servers for the sink tests: redis-server with an append-only file, and
nats-server with JetStream on file storage, each on a free loopback port (no mocks).

``HUBSIG_NATS_URL`` names a nats-server -js that ``.ci/run`` started; without it, or for a
test that stops and restarts its server, the tests start their own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.redis_server import RedisServer

NATS_SKIP_REASON = (
    "no NATS: nats-server is not installed and HUBSIG_NATS_URL names no server "
    "(.ci/run installs and starts one; locally: apt-get install nats-server)"
)
DURABLE_REDIS = ("--appendonly", "yes", "--appendfsync", "always")
"""What makes a Redis acknowledge only what is on disk: what the sinks' check() asks for."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def durable_redis(folder: Path) -> RedisServer:
    """A redis-server (not started) that writes every command to its append-only file."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server (apt-get install redis-server)")
    return RedisServer(folder, DURABLE_REDIS)


class NatsServer:
    """One nats-server with JetStream, its streams in ``folder``; it can be stopped (or
    killed) and started again on the same port with the same files."""

    def __init__(self, folder: Path, config: str | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.config = config  # a configuration file's text (accounts, users), if any
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["nats-server", "-js", "-sd", str(self.folder / "jetstream"),
                   "-a", "127.0.0.1", "-p", str(self.port)]  # fmt: skip
        if self.config is not None:
            path = self.folder / "nats.conf"
            path.write_text(self.config)
            command += ["-c", str(path)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while not _listening(self.port):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.02)

    def stop(self, kill: bool = False) -> None:
        if self._process is not None:
            if kill:
                self._process.kill()
            else:
                self._process.terminate()
            self._process.wait(timeout=20)
            self._process = None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def require_nats() -> None:
    if shutil.which("nats-server") is None and shared_nats_url() is None:
        pytest.skip(NATS_SKIP_REASON)


def shared_nats_url() -> str | None:
    """The nats-server .ci/run started (HUBSIG_NATS_URL), if it listens."""
    url = os.environ.get("HUBSIG_NATS_URL")
    if not url:
        return None
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    return url if _listening(port) else None
