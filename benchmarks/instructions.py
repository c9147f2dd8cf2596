"""Instructions per delivery through an adapter, counted by callgrind: repeatable on a noisy VM.

``python -m benchmarks.instructions`` runs each case under ``valgrind --tool=callgrind`` twice
(50 and 250 deliveries of the same 4 KiB body) and prints the difference divided by 200, so
imports and set-up cancel out. Run it in another checkout (``--root``) to compare two commits;
``--fastapi`` and ``--wsgi`` count the FastAPI, Flask and Django receivers of
``benchmarks.receivers`` instead (the WSGI ones without gunicorn).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

CASES = ("asgi", "asgi-none", "wsgi", "wsgi-none", "webhook")
FASTAPI = (
    "fastapi-hand",
    "fastapi-hand-router",
    "fastapi-dependency",
    "fastapi-middleware",
    "fastapi-route",
    "fastapi-route-app",
)
"""The FastAPI receivers of ``benchmarks.receivers``, in process (``--fastapi``)."""
WSGI_FRAMEWORKS = ("flask-hand", "flask-hubsig", "django-hand", "django-hubsig")
"""The Flask and Django receivers of ``benchmarks.receivers``, in process (``--wsgi``)."""


def run_case(case: str, count: int) -> None:
    """The measured work: ``count`` deliveries through the adapter ``case`` names."""
    import hubsig
    from benchmarks.adapters import (
        SECRET,
        asgi_request,
        bare_asgi,
        bare_wsgi,
        events_body,
        handler,
        wsgi_request,
    )
    from hubsig.asgi import HubSignatureMiddleware
    from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware

    body = events_body(4096)
    extra = {"store": None} if case.endswith("-none") else {}
    if case.startswith(("wsgi", "flask", "django")):
        call = wsgi_request(body)
        if case.startswith("wsgi"):
            app = WSGIMiddleware(bare_wsgi, secret=SECRET, **extra)
        else:
            from benchmarks.receivers import build_wsgi

            app = build_wsgi(case)
        for _ in range(count):
            call(app)
        return
    acall = asgi_request(body)
    if case.startswith("fastapi"):
        from benchmarks.receivers import build

        asgi_app = build(case)
    elif case.startswith("asgi"):
        asgi_app = HubSignatureMiddleware(bare_asgi, secret=SECRET, **extra)
    else:
        asgi_app = hubsig.webhook(secret=SECRET)(handler)

    async def deliveries() -> None:
        for _ in range(count):
            await acall(asgi_app)

    asyncio.run(deliveries())


def instructions(root: Path, case: str, count: int) -> int:
    return collected(root, "benchmarks.instructions", "--run", case, str(count))


def collected(root: Path, module: str, *arguments: str) -> int:
    """The instructions callgrind collects running ``python -m module arguments`` in the
    checkout at ``root``, from start to exit."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", module, *arguments,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)  # noqa: S603
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1))


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout to measure")
    options.add_argument("--run", nargs=2, metavar=("CASE", "COUNT"), help=argparse.SUPPRESS)
    options.add_argument("--fastapi", action="store_true", help="the FastAPI receivers instead")
    options.add_argument("--wsgi", action="store_true", help="the Flask and Django receivers")
    arguments = options.parse_args()
    if arguments.run:
        sys.path.insert(0, os.getcwd())
        run_case(arguments.run[0], int(arguments.run[1]))
        return
    print("| case | instructions per delivery |\n|---|---|")
    chosen = FASTAPI if arguments.fastapi else WSGI_FRAMEWORKS if arguments.wsgi else CASES
    for case in chosen:
        few = instructions(arguments.root, case, 50)
        many = instructions(arguments.root, case, 250)
        print(f"| {case} | {(many - few) // 200:,} |")


if __name__ == "__main__":
    main()
