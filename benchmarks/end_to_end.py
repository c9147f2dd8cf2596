"""The ASGI middleware under uvicorn on loopback, driven by a load generator in another
process (wrk when installed, else ``benchmarks.load``), with and without the middleware."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hubsig
from benchmarks.bodies import SECRET, events_body

VARIANTS = ("bare", "hubsig")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(variant: str) -> Iterator[str]:
    port = _free_port()
    with served([sys.executable, "-m", "benchmarks.serve_app", variant, str(port)], port) as url:
        yield url


@contextmanager
def served(command: list[str], port: int) -> Iterator[str]:
    """Run ``command`` (a server of our own) until it listens on ``port``; yield its URL."""
    process = subprocess.Popen(command)  # noqa: S603 (our own module)
    try:
        yield wait_until_listening(process, port)
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_listening(process: subprocess.Popen[Any], port: int, timeout: float = 30) -> str:
    """Wait (``timeout`` seconds at most) until ``process`` listens on ``port``; its hook's URL."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"http://127.0.0.1:{port}/hook"
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                command = " ".join(str(part) for part in process.args[2:])  # type: ignore[index]
                raise RuntimeError(f"{command} did not start") from None
            time.sleep(0.05)


def _wrk(
    url: str, seconds: int, connections: int, body_file: Path, signature: str
) -> dict[str, Any]:
    script = body_file.with_suffix(".lua")
    script.write_text(
        f'wrk.method = "POST"\n'
        f'local f = io.open("{body_file}", "rb"); wrk.body = f:read("*a"); f:close()\n'
        f'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Hub-Signature"] = "{signature}"\n',
        encoding="utf-8",
    )
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _milliseconds(re.search(r"\s50%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "p99_ms": _milliseconds(re.search(r"\s99%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0),
    }


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _python_load(
    url: str, seconds: int, connections: int, body_file: Path, signature: str
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.load",
        url,
        str(seconds),
        str(connections),
        str(body_file),
        signature,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    result: dict[str, Any] = json.loads(output)
    return result


def rows(
    seconds: int = 5, rounds: int = 2, connections: int = 32, size: int = 4096
) -> list[dict[str, Any]]:
    body = events_body(size)
    signature = hubsig.sign(body, SECRET)
    generator = "wrk" if shutil.which("wrk") else "python (httpx)"
    load = _wrk if shutil.which("wrk") else _python_load
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        body_file = Path(folder) / "body.json"
        body_file.write_bytes(body)
        for _ in range(rounds):
            for variant in VARIANTS:
                with _server(variant) as url:
                    load(url, 1, connections, body_file, signature)  # warm-up
                    result = load(url, seconds, connections, body_file, signature)
                if variant not in best or result["rps"] > best[variant]["rps"]:
                    best[variant] = result
    bare_rps = best["bare"]["rps"]
    return [
        {
            "name": variant,
            "generator": generator,
            "connections": connections,
            "size": size,
            **result,
            "share_of_bare_rps": result["rps"] / bare_rps,
        }
        for variant, result in best.items()
    ]
