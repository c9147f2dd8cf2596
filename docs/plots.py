"""Draw the documentation's plots from recorded benchmark figures: ``python docs/plots.py``.

Reads ``docs/_data/benchmarks.json`` (written by ``python -m benchmarks.run --only
verification end_to_end --json docs/_data/benchmarks.json``) and
``docs/_data/receivers.json`` (``python -m benchmarks.run --only parsing receivers
--json docs/_data/receivers.json``), and writes ``verification.png``,
``receivers.png`` and ``parsing.png`` under
``docs/_static/plots/``, which are committed; run it again after recording new figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DOCS = Path(__file__).parent
FIGURES = DOCS / "_data" / "benchmarks.json"
RECEIVER_FIGURES = DOCS / "_data" / "receivers.json"
PLOTS = DOCS / "_static" / "plots"
HUBSIG = ("hubsig sha1", "floor")


def verification(rows: list[dict[str, Any]], machine: str) -> Path:
    """Time to verify one delivery against its size, per verifier, log-log."""
    names = list(dict.fromkeys(row["name"] for row in rows))
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for name in names:
        points = sorted((row["size"], row["ns"] / 1000) for row in rows if row["name"] == name)
        sizes, micros = zip(*points, strict=True)
        style = {"linewidth": 2.5} if name in HUBSIG else {"linewidth": 1, "alpha": 0.8}
        axes.plot(sizes, micros, marker="o", label=name, **style)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("body size (bytes)")
    axes.set_ylabel("time to verify one delivery (µs, lower is better)")
    axes.set_title("Verification time against body size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.text(0.01, 0.01, machine, fontsize=7, alpha=0.7)
    figure.tight_layout()
    return _save(figure, "verification.png")


SERVERS = {
    "uvicorn": "uvicorn (httptools)",
    "uvicorn-h11": "uvicorn (h11)",
    "granian": "granian",
    "gunicorn": "gunicorn (Flask, Django)",
}
TARGETS = {
    "fastapi-route": 1.0,
    "fastapi-middleware": 0.95,
    "webhook": 1.3,
    "flask-hubsig": 1.0,
    "django-hubsig": 1.0,
}
PARSERS = {
    "parse_events": "parse_events\n(with msgspec)",
    "parse_events strict": "parse_events strict",
    "parse_events, standard": "parse_events\n(standard path)",
}


def receivers(rows: list[dict[str, Any]], machine: str) -> Path:
    """Each receiver's requests per second as a ratio to the hand-written one, per server."""
    names = list(dict.fromkeys(row["receiver"] for row in rows))
    servers = [server for server in SERVERS if any(row["server"] == server for row in rows)]
    groups = [
        (
            SERVERS[server],
            {r["receiver"]: r["ratio_to_hand"] for r in rows if r["server"] == server},
        )
        for server in servers
    ]
    figure, axes = plt.subplots(figsize=(9, 6), dpi=120)
    height = _grouped_bars(axes, names, names, groups)
    for index, name in enumerate(names):
        target = TARGETS.get(name)
        if target is not None:
            top, bottom = index - height / 2, index + 0.8 - height / 2
            axes.plot([target, target], [top, bottom], color="black", linestyle="--")
    axes.set_xlabel("requests per second / the hand-written receiver's (higher is better)")
    axes.set_title("Receivers doing the same job, wrk, 4 KiB: median of 5 rounds (dashes: targets)")
    return _finish(figure, axes, machine, "receivers.png")


def parsing(rows: list[dict[str, Any]], machine: str) -> Path:
    """``parse_events`` on each path, and its floor, as a ratio to ``json.loads``."""
    names = [name for name in dict.fromkeys(row["name"] for row in rows) if name != "json.loads"]
    groups = [
        (
            f"{size // 1024} KiB",
            {r["name"]: r["ratio_to_json_loads"] for r in rows if r["size"] == size},
        )
        for size in sorted({row["size"] for row in rows})
    ]
    figure, axes = plt.subplots(figsize=(8, 4), dpi=120)
    _grouped_bars(axes, names, [PARSERS.get(name, name) for name in names], groups)
    axes.axvline(0.6, color="black", linestyle="--", linewidth=1, label="target with msgspec")
    axes.axvline(1.5, color="black", linestyle=":", linewidth=1, label="target without")
    axes.set_xlabel("time / json.loads of the same bytes (lower is better)")
    axes.set_title("Parsing a delivery")
    return _finish(figure, axes, machine, "parsing.png")


def _grouped_bars(
    axes: Any, names: list[str], shown: list[str], groups: list[tuple[str, dict[str, float]]]
) -> float:
    """Horizontal bars, one row per name and one bar per group in it, and the 1.0 line;
    the height of a bar."""
    height = 0.8 / len(groups)
    for offset, (label, values) in enumerate(groups):
        present = [(i, values[name]) for i, name in enumerate(names) if name in values]
        places = [i + offset * height for i, _ in present]
        axes.barh(places, [value for _, value in present], height=height, label=label)
    axes.axvline(1.0, color="grey", linewidth=1)
    axes.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], shown)
    axes.invert_yaxis()
    return height


def _finish(figure: Any, axes: Any, machine: str, name: str) -> Path:
    axes.legend(fontsize=8, loc="lower right")
    figure.text(0.01, 0.01, machine, fontsize=7, alpha=0.7)
    figure.tight_layout()
    return _save(figure, name)


def _save(figure: Any, name: str) -> Path:
    PLOTS.mkdir(parents=True, exist_ok=True)
    path = PLOTS / name
    figure.savefig(path)
    plt.close(figure)
    return path


def main() -> int:
    figures = json.loads(FIGURES.read_text(encoding="utf-8"))
    machine = figures["machine"]
    caption = f"{machine['date'][:10]}, {machine['cpus']} cores, Python {machine['python']}"
    paths = [
        verification(figures["verification"], caption),
    ]
    if RECEIVER_FIGURES.exists():
        recorded = json.loads(RECEIVER_FIGURES.read_text(encoding="utf-8"))
        machine = recorded["machine"]
        caption = f"{machine['date'][:10]}, {machine['cpus']} cores, Python {machine['python']}"
        paths.append(receivers(recorded["receivers"], caption))
        paths.append(parsing(recorded["parsing"], caption))
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
