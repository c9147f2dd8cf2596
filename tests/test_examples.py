"""The example apps in ``examples/``, as a new user runs them: under a real server, started from
the checkout as the framework pages say, configured from the environment, sent real signed
deliveries by ``hubsig send``, each event handled once and each refusal and duplicate logged;
and refusing to start when a setting is wrong."""

from __future__ import annotations

import json
import os
import re
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

pytestmark = pytest.mark.slow  # real servers in subprocesses: `pytest -m slow` runs them

# example: (server command, application, the webhook's path); "python" runs the example's own
# __main__ (aiohttp's web.run_app, wsgiref's make_server)
EXAMPLES: dict[str, tuple[str, str, str]] = {
    "fastapi": ("uvicorn", "examples.fastapi_app:app", "/webhooks/interactions"),
    "starlette": ("uvicorn", "examples.starlette_app:app", "/api/webhooks/interactions"),
    "litestar": ("uvicorn", "examples.litestar_app:app", "/webhooks/interactions"),
    "quart": ("hypercorn", "examples.quart_app:app", "/webhooks/interactions"),
    "flask": ("gunicorn", "examples.flask_app:app", "/webhooks/interactions"),
    "django": ("gunicorn", "examples.django_app:application", "/webhooks/interactions"),
    "django-asgi": ("uvicorn", "examples.django_app:asgi_application", "/webhooks/interactions"),
    "aiohttp": ("python", "examples.aiohttp_app", "/webhooks/interactions"),
    "falcon": ("gunicorn", "examples.falcon_app:application", "/webhooks/interactions"),
    "falcon-asgi": ("uvicorn", "examples.falcon_app:asgi_application", "/webhooks/interactions"),
    "webhook": ("uvicorn", "examples.webhook_app:interactions", "/webhooks/interactions"),
    "wsgi": ("python", "examples.wsgi_app", "/webhooks/interactions"),
}
# The @hubsig.webhook example sets its scheme in code, so HUBSIG_SCHEME means nothing to it.
SCHEME_IN_CODE = {"webhook"}
# What each example's logging configuration prints: time, level, logger.
TIMED = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
HANDLED = re.compile(TIMED + r"INFO interactions: handled (\S+) trace_id=(\w+)$", re.MULTILINE)
DUPLICATE = re.compile(
    TIMED + r"INFO hubsig: duplicate delivery acknowledged trace_id=(\w+)$", re.MULTILINE
)
REFUSED = re.compile(
    TIMED + r"WARNING hubsig: refused delivery: signature_mismatch \(HTTP 401\)", re.MULTILINE
)
SENT = re.compile(r"^#\d+ +200 accepted .* ids=(\S+)  trace=(\w+)$", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _command(server: str, app: str, port: int) -> list[str]:
    if server == "python":
        return [sys.executable, "-m", app, "--port", str(port)]
    if server == "uvicorn":
        return [str(VENV_BIN / "uvicorn"), app, "--port", str(port), "--log-level", "warning"]
    if server == "hypercorn":
        return [str(VENV_BIN / "hypercorn"), app, "--bind", f"127.0.0.1:{port}"]
    return [str(VENV_BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}", "--workers", "1"]


def _environment(**variables: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("HUBSIG_")}
    return {**kept, **variables}  # no PYTHONPATH: the servers import from their directory


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


def _stop(process: subprocess.Popen[str]) -> str:
    """Stop the server and return everything it printed."""
    process.terminate()
    output, _ = process.communicate(timeout=30)
    return output


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_handles_each_delivery_once_and_refuses_tampered_ones(
    example: str, tmp_path: Path
) -> None:
    with _running(example, HUBSIG_SECRET=SECRET) as (process, port):
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, f"{example} did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}{EXAMPLES[example][2]}"
        good = _send(url, "--count", "3", "--events", "2", "--scheme", "genesys-multicloud")
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
        # Byte-for-byte re-sends, among fresh deliveries: all acknowledged, each event handled
        # once (every example has the default in-memory store).
        report = tmp_path / "mixed.jsonl"
        mixed = _send(
            url, "--count", "20", "--duplicates", "0.5", "--seed", "3", "--report", str(report)
        )
        assert mixed.returncode == 0, mixed.stdout
        assert "accepted 20" in mixed.stdout
        repeats = [json.loads(line)["duplicate_of"] for line in report.read_text().splitlines()]
        # The same body twice: --duplicates 1 makes every delivery after the first a re-send.
        twice = _send(url, "--count", "2", "--duplicates", "1")
        assert twice.returncode == 0, twice.stdout
        output = _stop(process)
    # What the framework page says the user sees: both answered 200 with the same ids, the
    # handler's line once, hubsig's INFO line for the repeat, the refusal with time and level.
    sent = SENT.findall(twice.stdout)
    assert len(sent) == 2, twice.stdout
    assert sent[0] == sent[1]
    ids, trace = sent[0]
    assert HANDLED.findall(output).count((ids, trace)) == 1, output
    assert DUPLICATE.findall(output).count(trace) == 1, output
    assert REFUSED.search(output), output
    # And over the whole run: the handler ran once per fresh delivery (3 good ones, the mixed
    # run's originals, the pair's first), hubsig acknowledged every re-send.
    originals = repeats.count(None)
    assert len(HANDLED.findall(output)) == 3 + originals + 1, output
    assert len(DUPLICATE.findall(output)) == len(repeats) - originals + 1, output


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize(
    "variables",
    [{"HUBSIG_SECRET": SECRET, "HUBSIG_SCHEME": "githb"}, {"HUBSIG_SECRETT": SECRET}],
    ids=["misspelt-scheme", "no-secret"],
)
def test_example_refuses_to_start_with_a_mistake(example: str, variables: dict[str, str]) -> None:
    if "HUBSIG_SCHEME" in variables and example in SCHEME_IN_CODE:
        pytest.skip("this example sets its scheme in code")
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
