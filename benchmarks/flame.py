"""A flame graph of one receiver under load: ``python -m benchmarks.flame [RECEIVER ...]``.

Runs each receiver of ``benchmarks.receivers`` (``fastapi-route``, ``fastapi-middleware``
and ``webhook`` unless named) under uvicorn with httptools, drives it with wrk (32
connections, 4 KiB deliveries) and samples the server with py-spy meanwhile; writes
``docs/_static/flame/<receiver>.svg``, with this machine's folders taken out of the frames'
file names (``site-packages/starlette/routing.py``, ``./hubsig/_flow.py``). Needs
``apt-get install wrk`` and py-spy (in the ``bench`` group), and the right to trace a
process of one's own.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

import hubsig
from benchmarks.bodies import SECRET, events_body
from benchmarks.end_to_end import _free_port, _wrk, wait_until_listening
from benchmarks.receivers import SIZE

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "_static" / "flame"
SECONDS = 10


def record(name: str, out: Path, seconds: int = SECONDS) -> Path:
    """Sample receiver ``name`` for ``seconds`` under wrk; the SVG's path."""
    port = _free_port()
    body = events_body(SIZE)
    signature = hubsig.sign(body, SECRET)
    command = [sys.executable, "-m", "benchmarks.receivers", "serve", name, str(port), "uvicorn"]
    server = subprocess.Popen(command)  # noqa: S603 (our own module)
    try:
        url = wait_until_listening(server, port)
        with tempfile.TemporaryDirectory() as folder:
            body_file = Path(folder) / "body.json"
            body_file.write_bytes(body)
            _wrk(url, 2, 32, body_file, signature)  # warm-up
            load = threading.Thread(target=_wrk, args=(url, seconds + 2, 32, body_file, signature))
            load.start()
            out.parent.mkdir(parents=True, exist_ok=True)
            sampler = [
                str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.pid),
                "--duration", str(seconds), "--rate", "250", "--format", "flamegraph",
                "--output", str(out),
            ]  # fmt: skip
            subprocess.run(sampler, check=True)  # noqa: S603
            load.join()
        out.write_text(without_machine_paths(out.read_text("utf-8")), "utf-8")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def without_machine_paths(svg: str) -> str:
    """The flame graph with this machine's folders taken out of its frames' file names."""
    folders = {
        sysconfig.get_paths()["purelib"]: "site-packages",
        sysconfig.get_paths()["stdlib"]: "python",
        str(ROOT): ".",
    }
    for folder, label in sorted(folders.items(), key=lambda item: -len(item[0])):
        svg = svg.replace(folder + "/", label + "/")
    return svg


def main(names: list[str]) -> None:
    for name in names or ["fastapi-route", "fastapi-middleware", "webhook"]:
        print(f"flame graph written to {record(name, OUT / f'{name}.svg')}")


if __name__ == "__main__":
    main(sys.argv[1:])
