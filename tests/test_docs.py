"""The documentation site: it builds with warnings as errors and nitpicky references, and its
API reference holds every public name of ``hubsig`` and of each public module."""

from __future__ import annotations

import importlib
import posixpath
import subprocess
import sys
from pathlib import Path

import pytest
from sphinx.util.inventory import InventoryFile

import hubsig

pytestmark = pytest.mark.slow  # the documentation build: `pytest -m slow` runs it

ROOT = Path(__file__).parent.parent
PUBLIC_MODULES = [
    "hubsig.errors",
    "hubsig.asgi",
    "hubsig.wsgi",
    "hubsig.fastapi",
    "hubsig.django",
    "hubsig.flask",
    "hubsig.aiohttp",
    "hubsig.kit",
    "hubsig.kit.asgi",
    "hubsig.kit.wsgi",
    "hubsig.sinks",
    "hubsig.sinks.redis_streams",
    "hubsig.sinks.jetstream",
    "hubsig.sinks.celery",
    "hubsig.sinks.outbox",
    "hubsig.workers",
    "hubsig.workers.redis_streams",
    "hubsig.workers.jetstream",
    "hubsig.workers.celery",
    "hubsig.stores",
    "hubsig.stores.redis",
    "hubsig.stores.postgres",
    "hubsig.testing",
    "hubsig.diagnosis",
    "hubsig.cli",
    "hubsig.otel",
]


@pytest.fixture(scope="module")
def documented(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every object the built site documents, from its ``objects.inv``."""
    out = tmp_path_factory.mktemp("docs")
    build = [
        sys.executable,
        "-m",
        "sphinx",
        "-q",
        "-W",
        "-n",
        "-b",
        "html",
        str(ROOT / "docs"),
        str(out),
    ]
    done = subprocess.run(build, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"sphinx-build -W -n failed:\n{done.stderr}"
    with open(out / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", posixpath.join)
    return {name for objects in inventory.values() for name in objects}


def test_every_name_hubsig_exports_is_in_the_api_reference(documented: set[str]) -> None:
    missing = sorted(f"hubsig.{name}" for name in hubsig.__all__)
    missing = [name for name in missing if name not in documented]
    assert missing == []


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_a_public_module_exports_is_in_the_api_reference(
    module_name: str, documented: set[str]
) -> None:
    """A name re-exported from ``hubsig`` itself may be documented there instead."""
    module = importlib.import_module(module_name)
    missing = [
        name
        for name in module.__all__
        if f"{module_name}.{name}" not in documented and f"hubsig.{name}" not in documented
    ]
    assert missing == []
