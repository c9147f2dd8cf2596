"""The example apps in ``examples/``, as a new user runs them: under a real server, configured
from the environment, sent real signed deliveries by ``hubsig send``; and refusing to start when
a setting is wrong."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SECRET = "examples-secret"
VENV_BIN = Path(sys.executable).parent

# example: (server command, application, the webhook's path)
EXAMPLES: dict[str, tuple[str, str, str]] = {
    "fastapi": ("uvicorn", "examples.fastapi_app:app", "/webhooks/interactions"),
    "starlette": ("uvicorn", "examples.starlette_app:app", "/api/webhooks/interactions"),
    "litestar": ("uvicorn", "examples.litestar_app:app", "/webhooks/interactions"),
    "quart": ("hypercorn", "examples.quart_app:app", "/webhooks/interactions"),
    "flask": ("gunicorn", "examples.flask_app:app", "/webhooks/interactions"),
    "django": ("gunicorn", "examples.django_app:application", "/webhooks/interactions"),
    "django-asgi": ("uvicorn", "examples.django_app:asgi_application", "/webhooks/interactions"),
    "aiohttp": ("aiohttp", "examples.aiohttp_app", "/webhooks/interactions"),
    "falcon": ("gunicorn", "examples.falcon_app:application", "/webhooks/interactions"),
    "falcon-asgi": ("uvicorn", "examples.falcon_app:asgi_application", "/webhooks/interactions"),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _command(server: str, app: str, port: int) -> list[str]:
    if server == "aiohttp":  # web.run_app, as the example's own __main__
        return [sys.executable, "-m", app, "--port", str(port)]
    if server == "uvicorn":
        return [str(VENV_BIN / "uvicorn"), app, "--port", str(port), "--log-level", "warning"]
    if server == "hypercorn":
        return [str(VENV_BIN / "hypercorn"), app, "--bind", f"127.0.0.1:{port}"]
    return [str(VENV_BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", "1"]


def _environment(**variables: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("HUBSIG_")}
    return {**kept, "PYTHONPATH": str(ROOT), **variables}


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def _running(example: str, **variables: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    server, app, _ = EXAMPLES[example]
    port = _free_port()
    process = subprocess.Popen(
        _command(server, app, port),
        cwd=ROOT,
        env=_environment(**variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def _send(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubsig", "send", url, *arguments],
        env={**_environment(), "HUBSIG_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_answers_good_deliveries_and_refuses_tampered_ones(example: str) -> None:
    with _running(example, HUBSIG_SECRET=SECRET) as (process, port):
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, f"{example} did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}{EXAMPLES[example][2]}"
        good = _send(url, "--count", "3", "--events", "2")
        assert good.returncode == 0, good.stdout + good.stderr
        assert "accepted 3" in good.stdout
        tampered = _send(url, "--tamper")
        assert tampered.returncode == 0, tampered.stdout  # refused, as expected
        assert "401" in tampered.stdout
        oversized = _send(url, "--events", "5000")  # about 1.3 MB, over the 1 MiB limit
        assert oversized.returncode == 1
        assert "accepted 0" in oversized.stdout
        # 413; or, where the server closes at once as asked (hypercorn), a reset that
        # reaches the sender before the answer does: refused either way.
        assert " 413 " in oversized.stdout or "error (ReadError" in oversized.stdout
        # Byte-for-byte re-sends: acknowledged like the originals (by the store where the
        # example has one, which processes each event once; processed again where not).
        mixed = _send(url, "--count", "20", "--duplicates", "0.5", "--seed", "3")
        assert mixed.returncode == 0, mixed.stdout
        assert "accepted 20" in mixed.stdout


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize(
    "variables",
    [{"HUBSIG_SECRET": SECRET, "HUBSIG_SCHEME": "githb"}, {"HUBSIG_SECRETT": SECRET}],
    ids=["misspelt-scheme", "no-secret"],
)
def test_example_refuses_to_start_with_a_mistake(example: str, variables: dict[str, str]) -> None:
    with _running(example, **variables) as (process, port):
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{example} kept running with a broken configuration")
        assert not _listening(port)
        if "HUBSIG_SCHEME" in variables:
            assert "must be one of" in output
            assert "not 'githb'" in output
        else:
            assert "HUBSIG_SECRET" in output or "['secret'] is None" in output


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_a_middleware_built_lazily_with_a_mistake_fails_the_start_up(server: str) -> None:
    """``app.add_middleware(HubSignatureMiddleware, secrett=...)``: the ConfigurationError is
    raised inside the server's lifespan start-up, where uvicorn would otherwise log that the
    lifespan 'appears unsupported' and serve 500s; hubsig fails the start-up instead."""
    port = _free_port()
    process = subprocess.Popen(
        _command(server, "tests.startup_apps:misspelt", port),
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{server} kept running with a misspelt setting")
    assert not _listening(port)
    assert "unknown setting 'secrett'; did you mean 'secret'?" in output
