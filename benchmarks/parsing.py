"""``parse_events`` against ``json.loads`` alone on the same bytes."""

from __future__ import annotations

import json
from typing import Any

import hubsig
from benchmarks.bodies import events_body
from benchmarks.timing import per_call


def rows(sizes: tuple[int, ...] = (4096, 64 * 1024)) -> list[dict[str, Any]]:
    result = []
    for size in sizes:
        body = events_body(size)
        seconds = per_call(
            {
                "json.loads": lambda body=body: json.loads(body),
                "parse_events": lambda body=body: hubsig.parse_events(body),
                "parse_events strict": lambda body=body: hubsig.parse_events(body, strict=True),
            }
        )
        events = len(hubsig.parse_events(body).events)
        for name, value in seconds.items():
            result.append(
                {
                    "size": size,
                    "events": events,
                    "name": name,
                    "us": value * 1e6,
                    "ratio_to_json_loads": value / seconds["json.loads"],
                }
            )
    return result
