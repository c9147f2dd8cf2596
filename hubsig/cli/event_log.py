"""An append-only JSON Lines file of accepted events: ``hubsig serve``'s embedded store.

Each event of a delivery becomes one line (operation id, event, entity in
wire names, trace id, which key signed it). Lines are written and flushed
before the receiver answers 200, so every acknowledged event is in the file
even if the process is stopped right after.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import TracebackType
from typing import Any

from hubsig._delivery import Delivery

__all__ = ["EventLog", "json_line", "read_event_log"]


class EventLog:
    """Appends accepted events to ``path``, one JSON object per line.

    Safe across threads and processes: each delivery's lines go out in one
    unbuffered ``write`` to a file opened with ``O_APPEND``, so workers that
    share the file never interleave their lines.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, delivery: Delivery) -> int:
        """Write every event of ``delivery``; returns how many lines were written."""
        lines = [json_line(record) + "\n" for record in records(delivery)]
        data = "".join(lines).encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk: say so rather than leave half a line
            raise OSError(f"wrote {written} of {len(data)} bytes to {self.path}")
        return len(lines)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def records(delivery: Delivery) -> list[dict[str, Any]]:
    """The JSON records for a delivery's events."""
    base = {
        "operationId": delivery.payload.operation_id,
        "traceId": delivery.trace.trace_id,
        "keyIndex": delivery.verification.key_index,
    }
    return [{**base, **event.to_dict()} for event in delivery.payload.events]


_UNSAFE_IN_A_LINE = re.compile("[\x7f-\x9f\u2028\u2029]")


def json_line(record: dict[str, Any]) -> str:
    """``record`` as one line of JSON, readable (non-ASCII kept) and safe to split and print.

    ``json.dumps`` escapes C0 controls; DEL, C1 controls (U+0085 is a line
    break to ``str.splitlines``, U+009B a terminal escape) and U+2028/9 are
    escaped here too. They can only occur inside strings, where ``\\uXXXX``
    means the same character.
    """
    text = json.dumps(record, ensure_ascii=False)
    return _UNSAFE_IN_A_LINE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def read_event_log(path: str | Path) -> list[dict[str, Any]]:
    """Every record in an event log, in order (for tests and the demo).

    Lines end at ``\\n`` only, as JSON Lines says (``str.splitlines`` also
    breaks at U+2028 and others, which a string in an older file may hold).
    """
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line]
