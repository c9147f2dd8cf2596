"""The README's and the documentation's promises: every Python example runs (and the adapter
ones serve a real delivery), and the README's two commands are what CI runs."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient as AiohttpClient
from aiohttp.test_utils import TestServer
from django.test import Client as DjangoClient
from django.test import override_settings
from starlette.testclient import TestClient
from werkzeug.test import Client as WerkzeugClient

import hubsig
from tests import django_site

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON_BLOCKS = [
    block
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
]
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
ADAPTER_MARKERS = (
    "from hubsig.asgi",
    "from hubsig.wsgi",
    "from hubsig.fastapi",
    "from hubsig.django",
    "from hubsig.flask",
    "from hubsig.aiohttp",
    "@hubsig.webhook",
)
TEST_BLOCKS = [block for block in PYTHON_BLOCKS if "def test_" in block]
ADAPTER_BLOCKS = [
    block
    for block in PYTHON_BLOCKS
    if any(m in block for m in ADAPTER_MARKERS) and block not in TEST_BLOCKS
]
PLAIN_BLOCKS = [b for b in PYTHON_BLOCKS if b not in ADAPTER_BLOCKS and b not in TEST_BLOCKS]

SECRET = "readme-secret"
PATH = "/webhooks/interactions"
BODY = json.dumps(
    {
        "operationId": "op",
        "data": {"entities": [{"event": "STARTED", "entity": {"id": "r-1", "mediaType": "chat"}}]},
    }
).encode()


def _block_id(block: str) -> str:
    return next(line for line in reversed(block.strip().splitlines()) if line.strip())[:40]


def test_readme_has_a_users_test_example() -> None:
    assert TEST_BLOCKS


def test_readme_has_examples_for_every_adapter() -> None:
    joined = "\n".join(ADAPTER_BLOCKS)
    for framework in ("fastapi", "starlette", "flask", "django", "@hubsig.webhook"):
        assert framework in joined
    assert len(PLAIN_BLOCKS) >= 4


@pytest.mark.parametrize("block", PLAIN_BLOCKS, ids=_block_id)
def test_python_example_runs(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 (our own README)


def _serve(namespace: dict[str, Any], block: str) -> Any:
    """A test client for whatever the example built, answering ``post(path, body, headers)``."""
    if "from hubsig.django" in block:
        from django.test import Client
        from django.urls import clear_url_caches, path

        django_site.urlpatterns[:] = [path(PATH.lstrip("/"), namespace["interactions"])]
        clear_url_caches()
        return Client(enforce_csrf_checks=True)
    if "from hubsig.aiohttp" in block:
        return _AiohttpPoster(namespace["app"])
    if "django" in block:
        from django.urls import path

        django_site.urlpatterns[:] = [path(PATH.lstrip("/"), namespace["interactions"])]
        return WerkzeugClient(namespace["application"])
    if "flask" in block:
        return namespace["app"].test_client()
    if "@hubsig.webhook" in block:
        return TestClient(namespace["interactions"])
    return TestClient(namespace["app"])


class _AiohttpPoster:
    """An aiohttp test client on a loop of its own, for posting from synchronous code."""

    def __init__(self, app: web.Application) -> None:
        self._loop = asyncio.new_event_loop()
        self._client: AiohttpClient[web.Request, web.Application] = AiohttpClient(
            TestServer(app), loop=self._loop
        )
        self._loop.run_until_complete(self._client.start_server())

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async def post() -> tuple[int, Any]:
            response = await self._client.post(PATH, data=body, headers=headers)
            return response.status, await response.json()

        return self._loop.run_until_complete(post())

    def close(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()


def _post(client: Any, body: bytes, secret: str) -> tuple[int, Any]:
    headers = {"X-Hub-Signature": hubsig.sign(body, secret), "Content-Type": "application/json"}
    if isinstance(client, TestClient):
        response = client.post(PATH, content=body, headers=headers)
        return response.status_code, response.json()
    if isinstance(client, _AiohttpPoster):
        return client.post(body, headers)
    if isinstance(client, DjangoClient):
        answer = client.post(PATH, body, content_type="application/json", headers=headers)
        return answer.status_code, answer.json()
    response = client.post(PATH, data=body, headers=headers)
    return response.status_code, json.loads(response.get_data())


@pytest.mark.parametrize("block", ADAPTER_BLOCKS, ids=_block_id)
def test_adapter_example_serves_a_signed_delivery(
    block: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUBSIG_SECRET", SECRET)
    django_site.configure()  # override_settings needs settings, whatever the framework
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    with override_settings(HUBSIG={"secret": SECRET, "scheme": "genesys-multicloud"}):
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    client = _serve(namespace, block)
    try:
        status, answer = _post(client, BODY, SECRET)
        assert status == 200
        ok = {"status": {"code": 0, "message": "OK"}, "data": {"ids": [{"id": "r-1"}]}}
        assert answer == ok
        status, answer = _post(client, BODY, "wrong-secret")
        assert status == 401
        assert answer["status"]["message"].startswith("signature_mismatch:")
    finally:
        if isinstance(client, _AiohttpPoster):
            client.close()
    if "@hubsig.webhook" in block:
        printed = capsys.readouterr().out
        assert "started" in printed.lower()
        assert "r-1" in printed


@pytest.mark.parametrize("block", TEST_BLOCKS, ids=_block_id)
def test_users_test_example_passes_under_pytest(block: str, pytester: pytest.Pytester) -> None:
    """The testing example is a user's test file: run it with pytest and the installed plugin."""
    pytester.makepyfile(test_users_receiver=block)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=block.count("def test_"))


def test_readme_opens_with_the_two_commands_and_ci_runs_them() -> None:
    main_job, tests = SHELL_BLOCKS[0].strip(), SHELL_BLOCKS[1].strip()
    assert README.index(main_job) < README.index(tests) < README.index("---")
    assert "hubsig demo" in main_job
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci
    assert main_job in ci
