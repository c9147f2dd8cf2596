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
    exec(compile(code, "hubsig/kit.py", "exec"), namespace)  # noqa: S102 (our own docstring)
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
    import dataclasses

    from hubsig._flow import Sleep

    assert Sleep(0.05) == Sleep(0.05)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Sleep(0.05).seconds = 1  # type: ignore[misc]


def test_the_kit_publishes_no_effect_of_the_flow() -> None:
    """An adapter gives the driver its I/O callbacks; the effects stay the flow's business."""
    effects = {"Await", "Effect", "Handle", "KeepAlive", "ReadBody", "Sleep", "StoreCall"}
    assert not effects & set(kit.__all__)


def test_the_aiohttp_adapter_is_written_on_the_kit_alone() -> None:
    """What its docstring promises: no private hubsig module, only the kit and public ones."""
    import ast
    from pathlib import Path

    import hubsig.aiohttp

    tree = ast.parse(Path(hubsig.aiohttp.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
    }
    private = {name for name in imported if name and name.startswith("hubsig._")}
    assert private == set()
