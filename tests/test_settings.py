"""Every setting typed for the type checker, and checked at construction by every adapter."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hubsig
from hubsig._config import WebhookSettings
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.fastapi import VerifiedDelivery
from hubsig.stores import MemoryStore
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware
from tests.harness import Sent, asgi_scope

ROOT = Path(__file__).parent.parent
MISTAKES = Path(__file__).parent / "typing" / "mistakes.py"


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return []


ADAPTERS: dict[str, Callable[..., object]] = {
    "hubsig.asgi.HubSignatureMiddleware": lambda **s: ASGIMiddleware(_asgi_app, **s),
    "hubsig.wsgi.HubSignatureMiddleware": lambda **s: WSGIMiddleware(_wsgi_app, **s),
    "hubsig.webhook": lambda **s: hubsig.webhook(**s),
    "hubsig.fastapi.VerifiedDelivery": lambda **s: VerifiedDelivery(**s),
}


def test_the_typed_settings_are_exactly_the_configurations_fields() -> None:
    fields = {f.name for f in dataclasses.fields(hubsig.WebhookConfig) if f.init}
    assert set(WebhookSettings.__annotations__) == fields


MISTAKEN: list[tuple[dict[str, Any], str]] = [
    ({"secrett": "s"}, "unknown setting 'secrett'; did you mean 'secret'"),
    ({"secret": "s", "max_body_size": "1MB"}, "max_body_size"),
    ({"secret": "s", "acknowledge_rejections": "false"}, "acknowledge_rejections"),
    ({"secret": "s", "strict": "yes"}, "strict"),
    ({"secret": "s", "store": MemoryStore}, "write MemoryStore(...)"),
    ({"secret": "s", "store": object()}, "store must have claim"),
    ({"secret": "s", "dedupe": {"lease": 60}}, "dedupe must be a DedupePolicy"),
    ({"secret": "s", "header_name": "X-Hub-Signature:"}, "signature header"),
    ({"secret": "s", "scheme": "github"}, "scheme must be a hubsig.Scheme"),
    ({"secret": 3.14}, "secret"),
    ({"secret": "s", "body_timeout": -1}, "body_timeout"),
    ({"max_body_size": 10}, "secret= is required"),
]


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    ("settings", "named"), MISTAKEN, ids=[next(iter(s)) + "-" + n[:12] for s, n in MISTAKEN]
)
def test_a_mistake_is_refused_at_construction_naming_the_adapter_and_setting(
    adapter: str, settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(hubsig.ConfigurationError) as raised:
        ADAPTERS[adapter](**settings)
    assert str(raised.value).startswith(adapter + ": ")
    assert named in str(raised.value)


@pytest.mark.parametrize("setting", [{"paths": ["/hook"]}, {"exempt": ["/health"]}])
def test_the_dependency_refuses_settings_it_cannot_honour(setting: dict[str, Any]) -> None:
    with pytest.raises(hubsig.ConfigurationError, match="cannot apply to a route-level door"):
        VerifiedDelivery(secret="s", **setting)


def _mypy(*paths: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.stdout


def _readme_examples(folder: Path) -> list[Path]:
    """Every Python example of the README and the documentation, one file each."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    blocks = [
        block
        for page in pages
        for block in re.findall(r"```python\n(.*?)```", page.read_text("utf-8"), re.DOTALL)
    ]
    paths = []
    for number, block in enumerate(blocks):
        path = folder / f"readme_example_{number}.py"
        path.write_text(block, encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.slow
def test_mypy_reports_every_mistake_and_passes_the_readme(tmp_path: Path) -> None:
    """One mypy run over the file of deliberate mistakes and every README example."""
    examples = _readme_examples(tmp_path)
    report = _mypy(MISTAKES, *examples)
    flagged = {
        int(line.split(":")[1])
        for line in report.splitlines()
        if line.startswith(str(MISTAKES.relative_to(ROOT))) and ": error:" in line
    }
    marked = {
        number
        for number, line in enumerate(MISTAKES.read_text().splitlines(), start=1)
        if line.endswith("# error")
    }
    assert flagged == marked, report
    readme_errors = [line for line in report.splitlines() if "readme_example_" in line]
    assert readme_errors == []


def test_built_inside_a_running_server_a_broken_middleware_fails_start_up_and_refuses() -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        middleware = ASGIMiddleware(_asgi_app, secrett="s")  # type: ignore[call-arg]
        startup: list[dict[str, Any]] = []
        inbox = [{"type": "lifespan.startup"}]

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send_startup(message: dict[str, Any]) -> None:
            startup.append(message)

        await middleware({"type": "lifespan"}, receive, send_startup)
        answer: list[dict[str, Any]] = []

        async def send_answer(message: dict[str, Any]) -> None:
            answer.append(message)

        await middleware(asgi_scope(Sent([], {}, path="/")), receive, send_answer)
        return startup, answer

    with pytest.raises(hubsig.ConfigurationError):
        ASGIMiddleware(_asgi_app, secrett="s")  # type: ignore[call-arg]  # at import: raises
    startup, answer = asyncio.run(scenario())
    assert startup[0]["type"] == "lifespan.startup.failed"
    assert "unknown setting 'secrett'" in startup[0]["message"]
    assert answer[0]["status"] == 500  # served anyway (lifespan off): every request refused
