"""``parse_events`` against ``json.loads`` alone on the same bytes, on both of its paths.

``parse_events`` is the msgspec path when ``hubsig[fast]`` is installed;
``parse_events, standard`` is the pure-Python path, measured in the same run by
setting the fast path aside; ``msgspec structs only`` decodes into the fast
path's structs and builds nothing, the floor that path stands on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hubsig
from benchmarks.bodies import events_body
from benchmarks.timing import per_call
from hubsig import _payload


@contextmanager
def _standard_path() -> Iterator[None]:
    """``parse_events`` without its msgspec path, as without ``hubsig[fast]``."""
    _payload._fast_parsers()  # loaded (or found missing) before it is set aside
    kept = list(_payload._fast)
    _payload._fast[:] = [None]
    try:
        yield
    finally:
        _payload._fast[:] = kept


def rows(sizes: tuple[int, ...] = (4096, 64 * 1024)) -> list[dict[str, Any]]:
    result = []
    fast = _payload._fast_parsers() is not None
    for size in sizes:
        body = events_body(size)
        candidates: dict[str, Callable[[], Any]] = {
            "json.loads": lambda body=body: json.loads(body),
            "parse_events": lambda body=body: hubsig.parse_events(body),
            "parse_events strict": lambda body=body: hubsig.parse_events(body, strict=True),
        }
        if fast:
            from hubsig import _fast_payload

            candidates["msgspec structs only"] = lambda body=body: _fast_payload._KNOWN.decode(body)
        seconds = per_call(candidates)
        if fast:  # the standard path in the same run, with its own json.loads baseline
            with _standard_path():
                standard = per_call(
                    {
                        "json.loads": lambda body=body: json.loads(body),
                        "parse_events": lambda body=body: hubsig.parse_events(body),
                    }
                )
            seconds["parse_events, standard"] = (
                standard["parse_events"] / standard["json.loads"] * seconds["json.loads"]
            )
        events = len(hubsig.parse_events(body).events)
        for name, value in seconds.items():
            result.append(
                {
                    "size": size,
                    "events": events,
                    "name": name if fast or name != "parse_events" else "parse_events, standard",
                    "us": value * 1e6,
                    "ratio_to_json_loads": value / seconds["json.loads"],
                }
            )
    return result
