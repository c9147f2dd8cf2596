"""How often one delivery's path goes back into a hubsig module it has already left.

``python -m benchmarks.module_hops`` sends one signed 4 KiB delivery through the ASGI
middleware (in process, after one warm-up delivery), follows every Python call and return
with ``sys.setprofile``, and keeps the hubsig module each step runs in. Consecutive steps
in one module are one visit. A *return* is a call from one hubsig module into another
that the path had already left (``A`` calls ``B``, ``B`` returns, ``A`` calls ``B`` again:
one; ``B`` handing its answer back to ``A`` is not a call, so it is none). Fewer returns
mean a path that reads top to bottom: the adapter does I/O, the flow decides, each
decision in one place. ``--root`` measures another
checkout (for a before/after in one run); ``--show`` prints the visits.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any


def visits() -> list[tuple[str, bool]]:
    """The hubsig modules one delivery through the ASGI middleware visits, in order, each
    with whether it was entered by a call (rather than by a return to it)."""
    from benchmarks.adapters import SECRET, asgi_request, bare_asgi, events_body
    from hubsig.asgi import HubSignatureMiddleware

    call = asgi_request(events_body(4096))
    app = HubSignatureMiddleware(bare_asgi, secret=SECRET)
    asyncio.run(call(app))  # warm-up: lazy imports, caches
    path: list[tuple[str, bool]] = []

    def module_of(frame: FrameType | None) -> str | None:
        if frame is None:
            return None
        name = frame.f_globals.get("__name__", "")
        return name if isinstance(name, str) and name.startswith("hubsig") else None

    def profile(frame: FrameType, event: str, _: Any) -> None:
        if event not in ("call", "return"):
            return
        now = module_of(frame if event == "call" else frame.f_back)
        if now is not None and (not path or path[-1][0] != now):
            path.append((now, event == "call"))

    async def measured() -> None:
        sys.setprofile(profile)
        try:
            await call(app)
        finally:
            sys.setprofile(None)

    asyncio.run(measured())
    return path


def returns(path: list[tuple[str, bool]]) -> int:
    """Calls into a module the path had already left."""
    seen: set[str] = set()
    count = 0
    for module, called in path:
        count += called and module in seen
        seen.add(module)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="another checkout to measure")
    parser.add_argument("--show", action="store_true", help="print every visit")
    options = parser.parse_args()
    if options.root is not None:
        command = [sys.executable, "-m", "benchmarks.module_hops"]
        if options.show:
            command.append("--show")
        env = {"PYTHONPATH": str(options.root.resolve())}
        subprocess.run(command, cwd=options.root, check=True, env=env)  # noqa: S603 (this Python)
        return
    path = visits()
    if options.show:
        print(" ".join(("-> " if called else "<- ") + name[7:] for name, called in path))
    modules = {name for name, _ in path}
    print(f"{len(path)} visits to {len(modules)} modules, {returns(path)} returns")


if __name__ == "__main__":
    main()
