"""What a release promises: one version, the license, the typed marker."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import hubsig

ROOT = Path(__file__).parent.parent


def test_the_installed_version_is_hubsig_version() -> None:
    assert importlib.metadata.version("hubsig") == hubsig.__version__


def test_the_version_lives_in_one_place() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]


def test_python_is_not_capped_and_development_tools_are_not_published() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "<" not in project["requires-python"]
    assert not {"dev", "bench", "docs"} & set(project["optional-dependencies"])


def test_the_package_is_typed_and_licensed() -> None:
    assert (ROOT / "hubsig" / "py.typed").exists()
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert importlib.metadata.metadata("hubsig")["License-Expression"] == "MIT"
