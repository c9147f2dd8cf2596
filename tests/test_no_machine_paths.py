"""No file in the repository holds an absolute path of the machine it was written on.

A flame graph's title, a recorded log, a copied traceback: each can carry the
author's checkout, home directory, temporary directory or virtualenv, which
mean nothing elsewhere and say more than they should. Every file git tracks is
read as bytes (documents, code, images alike) and none is excluded. The
patterns are spelt so that this file does not match them itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_AFTER = rb"(?<![\w.:/~-])"  # a path's own start, not the middle of a URL or a longer path
NAME = rb"[\w.+~-]+"

GENERAL = {
    "a superuser's home": NOT_AFTER + rb"/(?:root)/",
    "a user's home": NOT_AFTER + rb"/(?:home|Users)/" + NAME + rb"/",
    "a Windows user's home": rb"\b[A-Za-z]:\\(?:Users)\\",
    "a temporary directory": NOT_AFTER
    + rb"/(?:tmp)/(?![\w.-]*X{6})"
    + NAME,  # not mktemp's template
    "a macOS temporary directory": NOT_AFTER + rb"/(?:private/var|var)/(?:folders)/",
    "an installed package's absolute path": (
        NOT_AFTER + rb"/(?:" + NAME + rb"/)+(?:site|dist)-(?:packages)\b"
    ),
}


def _this_machine() -> dict[str, bytes]:
    """This checkout's and this user's own directories, wherever they are."""
    found = {}
    for name, directory in (("this repository", ROOT), ("this user's home", Path.home())):
        text = str(directory).rstrip("/")
        if text.count("/") >= 1 and len(text) > 1:  # "/" alone would match everything
            found[name] = NOT_AFTER + re.escape(text.encode()) + rb"(?:/|\b)"
    return found


def _tracked_files() -> list[Path]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing is tracked")
    listed = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    return [ROOT / name.decode() for name in listed.split(b"\0") if name]


def test_the_patterns_find_what_they_are_for() -> None:
    """Each pattern, shown an example it must catch and one it must leave alone."""
    patterns = {**GENERAL, **_this_machine()}
    slash = "/"
    caught = [
        slash.join(["", "root", "project", "flame.svg"]),
        slash.join(["", "home", "ada", "hubsig", "x.py"]),
        slash.join(["", "tmp", "pytest-of-ada", "pytest-3"]),
        "output " + slash.join(["", "opt", "venv", "lib", "python3.11", "site-packages", "x"]),
        str(ROOT / "docs" / "_static" / "flame" / "webhook.svg"),
    ]
    for example in caught:
        assert any(re.search(p, example.encode()) for p in patterns.values()), example
    left = [
        "https://example.org" + slash.join(["", "home", "ada", "page"]),
        ".venv" + slash.join(["", "lib", "python3.11", "site-packages", "x"]),
        "mktemp -d " + slash.join(["", "tmp", "hubsig-ci.XXXXXX"]),
        "docs/_static/flame/webhook.svg",
    ]
    for example in left:
        assert not any(re.search(p, example.encode()) for p in patterns.values()), example


def test_no_tracked_file_holds_an_absolute_machine_path() -> None:
    patterns = {**GENERAL, **_this_machine()}
    found: list[str] = []
    for path in _tracked_files():
        if not path.is_file():  # deleted in the working tree, not yet in git
            continue
        content = path.read_bytes()
        for what, pattern in patterns.items():
            for match in re.finditer(pattern, content):
                line = content.count(b"\n", 0, match.start()) + 1
                shown = match.group().decode(errors="replace")
                found.append(f"{path.relative_to(ROOT)}:{line}: {what} ({shown})")
    assert found == [], "absolute machine paths in tracked files:\n" + "\n".join(found)
