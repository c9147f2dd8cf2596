"""Screenshots of the built site in headless Chromium: ``python docs/screenshots.py``.

Renders the home page and the API reference of ``docs/_build/html`` (build it
first: ``sphinx-build -W -n docs docs/_build/html``) with Debian's ``chromium``
(``apt-get install chromium``) into ``docs/_build/screenshots/``, to look at
before a release. Prints the paths it wrote.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).parent
BUILT = DOCS / "_build" / "html"
PAGES = {"home": "index.html", "api": "api.html", "once": "guide/once.html"}


def shoot(page: str, out: Path, width: int = 1280, height: int = 1600) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(  # noqa: S603 (Debian's chromium, our own files)
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
                f"--window-size={width},{height}", f"--screenshot={out}",
                (BUILT / page).as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip


def main() -> int:
    if not (BUILT / "index.html").exists():
        print("build the site first: sphinx-build -W -n docs docs/_build/html", file=sys.stderr)
        return 2
    folder = DOCS / "_build" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    for name, page in PAGES.items():
        out = folder / f"{name}.png"
        shoot(page, out)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
