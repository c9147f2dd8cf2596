"""Run hubsig's benchmarks: ``python -m benchmarks.run [--quick] [--only SECTION ...]``.

Prints one Markdown table per section and writes the same figures as JSON
(``--json``, default ``benchmarks/results/latest.json``). Every figure that
matters is a ratio to a baseline measured in the same run and process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SECTIONS = (
    "verification",
    "streaming",
    "adapters",
    "memory",
    "parsing",
    "end_to_end",
    "receivers",
)
DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"


def _verification(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import verification

    sizes = verification.SIZES[:3] if quick else verification.SIZES
    return verification.by_size(sizes)


def _streaming(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import verification

    return verification.streaming((1024 * 1024,) if quick else (1024 * 1024, 16 * 1024 * 1024))


def _adapters(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import adapters

    return adapters.asgi_rows() + adapters.wsgi_rows()


def _memory(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import memory

    return memory.rows(1024 * 1024 if quick else 16 * 1024 * 1024)


def _parsing(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import parsing

    return parsing.rows()


def _end_to_end(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import end_to_end

    return end_to_end.rows(seconds=2 if quick else 5, rounds=1 if quick else 2)


def _receivers(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import receivers

    return receivers.run(seconds=2 if quick else 4, rounds=1 if quick else 5)


RUNNERS: dict[str, Callable[[bool], list[dict[str, Any]]]] = {
    "verification": _verification,
    "streaming": _streaming,
    "adapters": _adapters,
    "memory": _memory,
    "parsing": _parsing,
    "end_to_end": _end_to_end,
    "receivers": _receivers,
}


def markdown(section: str, rows: list[dict[str, Any]]) -> str:
    """One Markdown table with every key of the rows as a column."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [f"### {section}", "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and shorter runs")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write JSON")
    arguments = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": machine(), "quick": arguments.quick}
    print(f"hubsig benchmarks, {results['machine']}\n")
    for section in arguments.only or SECTIONS:
        rows = RUNNERS[section](arguments.quick)
        results[section] = rows
        print(markdown(section, rows), flush=True)
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"figures written to {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
