"""The adapter kit's own example: an adapter for a made-up framework, in about 30 lines, works."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import hubsig
from hubsig import kit
from hubsig.stores import MemoryStore
from hubsig.testing import make_events, signed_request

SECRET = "kit-secret"


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    state: dict[Any, Any] = field(default_factory=dict)

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 7):
            yield self.body[start : start + 7]


def _example() -> Any:
    assert kit.__doc__ is not None
    code = textwrap.dedent(kit.__doc__.split("::\n", 1)[1])
    namespace: dict[str, Any] = {"Response": Response}
    exec(compile(code, "<hubsig.kit docstring>", "exec"), namespace)  # noqa: S102 (our own docstring)
    return namespace["guarded"]


def test_the_kit_example_is_a_complete_adapter() -> None:
    seen: list[str] = []

    async def handler(request: Request) -> Response:
        delivery = hubsig.delivery_of(request.state)
        seen.extend(delivery.payload.entity_ids)
        return Response(200, {}, hubsig.events_response(delivery.payload.entity_ids).to_json())

    endpoint = _example()(handler, secret=SECRET, store=MemoryStore())
    sent = signed_request(make_events(2), SECRET)

    async def scenario() -> list[Response]:
        good = Request("POST", "/hook", sent.headers, sent.body)
        again = Request("POST", "/hook", sent.headers, sent.body)
        tampered = Request("POST", "/hook", sent.headers, sent.body + b" ")
        wrong_method = Request("GET", "/hook", sent.headers, b"")
        return [await endpoint(r) for r in (good, again, tampered, wrong_method)]

    good, again, tampered, wrong_method = asyncio.run(scenario())
    assert good.status == 200
    assert again.status == 200  # a duplicate, acknowledged by the flow: the handler ran once
    assert json.loads(again.body)["data"]["ids"] == json.loads(good.body)["data"]["ids"]
    assert len(seen) == 2
    assert tampered.status == 401
    assert wrong_method.status == 405


def test_the_flows_effects_stay_frozen() -> None:
    """The effects are the flow's own now (the kit does not publish them), and still immutable:
    nothing the driver hands around may change one."""
    from hubsig._flow import Sleep, StoreCall

    assert Sleep(0.05) == Sleep(0.05)
    with pytest.raises(AttributeError):
        Sleep(0.05).seconds = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        StoreCall(print, ()).keep_alive = None  # type: ignore[misc]


def test_the_kit_publishes_no_effect_of_the_flow() -> None:
    """An adapter gives the driver its I/O callbacks; the effects stay the flow's business."""
    effects = {"Await", "Effect", "Handle", "KeepAlive", "ReadBody", "Sleep", "StoreCall"}
    assert not effects & set(kit.__all__)


ADAPTERS = (
    "hubsig.asgi",
    "hubsig.wsgi",
    "hubsig.fastapi",
    "hubsig.dependency",
    "hubsig.flask",
    "hubsig.django",
    "hubsig.django.apps",
    "hubsig.aiohttp",
    "hubsig._endpoint",  # hubsig.webhook, for ASGI, WSGI and serve
)
"""Every first-party adapter: each may import only the kit and public modules."""


def _private_imports(module: str) -> set[str]:
    """The hubsig modules ``module`` imports (at its top or inside a function) that are
    private: a part of the dotted name starts with ``_``, or ``from hubsig import _x``."""
    import ast
    import importlib
    from pathlib import Path

    source = importlib.import_module(module).__file__
    assert source is not None
    tree = ast.parse(Path(source).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    return {
        name
        for name in imported
        if name.split(".")[0] == "hubsig" and any(part.startswith("_") for part in name.split("."))
    }


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_adapter_is_written_on_the_kit_and_public_modules_alone(adapter: str) -> None:
    """The import graph the kit promises: an adapter that needs a private module shows a
    gap in the kit (fill it there), never a shortcut around it."""
    assert _private_imports(adapter) == set()


def test_the_import_graph_check_sees_a_private_import() -> None:
    """The check above can fail: the flow's own module imports private ones."""
    assert "hubsig._check" in _private_imports("hubsig._flow")
    assert "hubsig._telemetry" in _private_imports("hubsig.otel")
