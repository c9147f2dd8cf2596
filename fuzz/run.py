"""Run a fuzz target under atheris for a bounded time: ``python fuzz/run.py TARGET SECONDS``.

Prints the number of executions. Exits non-zero (with the input) if any
exception other than hubsig's own errors escapes.
"""

from __future__ import annotations

import os
import sys
import time

import atheris

with atheris.instrument_imports():
    import hubsig  # noqa: F401 (instrumented for coverage guidance)
    from fuzz.targets import TARGETS


def main() -> None:
    name, seconds = sys.argv[1], float(sys.argv[2])
    target = TARGETS[name]
    deadline = time.monotonic() + seconds
    executions = 0

    def one_input(data: bytes) -> None:
        nonlocal executions
        executions += 1
        if time.monotonic() > deadline:
            print(f"{name}: {executions} executions in {seconds:.0f} s, no failure", flush=True)
            os._exit(0)  # libFuzzer would report sys.exit's SystemExit as a crash
        target(data)

    atheris.Setup([sys.argv[0], "-rss_limit_mb=2048"], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
