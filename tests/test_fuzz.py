"""The fuzz targets under hypothesis, and a short atheris run of each (long runs: fuzz/run.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.targets import TARGETS

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("name", TARGETS)
@settings(max_examples=300)
@given(data=st.one_of(st.binary(max_size=2048), st.text(max_size=512).map(str.encode)))
def test_targets_raise_only_hubsig_errors(name: str, data: bytes) -> None:
    TARGETS[name](data)


@pytest.mark.slow
@pytest.mark.parametrize("name", TARGETS)
def test_short_atheris_run(name: str) -> None:
    pytest.importorskip(
        "atheris", reason="atheris is installed by the dev extra on Linux, 3.10-3.12"
    )
    completed = subprocess.run(
        [sys.executable, "-m", "fuzz.run", name, "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "no failure" in completed.stdout
