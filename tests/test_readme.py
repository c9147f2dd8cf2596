"""The README's promises: its Python examples run, its commands match CI, its API list is whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hubsig

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)


def test_readme_has_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.strip().splitlines()[-1][:40])
def test_python_example_runs(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 (our own README)


def test_readme_opens_with_the_two_commands_and_ci_runs_them() -> None:
    main_job, tests = SHELL_BLOCKS[0].strip(), SHELL_BLOCKS[1].strip()
    assert "hubsig verify" in main_job
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci
    assert main_job in ci


def test_readme_documents_exactly_the_public_api() -> None:
    section = README.split("## Public API", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"`([A-Za-z_]+)`", section))
    assert documented == set(hubsig.__all__)
