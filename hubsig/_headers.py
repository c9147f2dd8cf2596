"""A case-insensitive, read-only view of request headers, whatever their source.

Frameworks hand headers over as a dict, a list of ``(name, value)`` pairs,
or ASGI's raw byte pairs; the core takes any of them through this one type.
Byte values are decoded as Latin-1, as HTTP/1.1 defines them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeAlias

__all__ = ["HeaderSource", "Headers"]

_Text = str | bytes
HeaderSource: TypeAlias = (
    "Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[_Text, _Text]] | Headers"
)


class Headers(Mapping[str, str]):
    """Header values by lower-case name; ``get_all`` keeps repeated headers."""

    __slots__ = ("_first", "_more")

    def __init__(self, source: HeaderSource = ()) -> None:
        if source.__class__ is list and source:  # a server's pairs, on every request
            each = _distinct_pairs(source)
            if each is not None:
                self._first: dict[str, str] = each
                self._more: dict[str, list[str]] = {}
                return
        if isinstance(source, Headers):
            self._first = source._first
            self._more = source._more
            return
        pairs: Iterable[tuple[_Text, _Text]] = (
            source.items() if isinstance(source, Mapping) else source
        )
        first: dict[str, str] = {}
        more: dict[str, list[str]] = {}  # the values after the first, for repeated names only
        for name, value in pairs:
            key = (name.decode("latin-1") if name.__class__ is bytes else _text(name)).lower()
            text = value.decode("latin-1") if value.__class__ is bytes else _text(value)
            if key not in first:
                first[key] = text
            elif key in more:
                more[key].append(text)
            else:
                more[key] = [text]
        self._first = first
        self._more = more

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The first value sent under ``name`` (any case), or ``default``."""
        return self._first.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    @property
    def by_lower_name(self) -> Mapping[str, str]:
        """The first value of each header, keyed by its lower-case name (for hot paths
        that already spell the names in lower case; do not change it)."""
        return self._first

    def get_all(self, name: str) -> list[str]:
        """Every value sent under ``name``, in order (empty if none)."""
        key = name.lower()
        first = self._first.get(key)
        if first is None:
            return []
        return [first, *self._more.get(key, ())]

    def __repr__(self) -> str:
        return f"Headers({sorted(self._first)})"


def _distinct_pairs(pairs: list[tuple[_Text, _Text]]) -> dict[str, str] | None:
    """The values by lower-case name of ASGI's byte pairs or a WSGI server's text pairs, in
    one pass; ``None`` (the general way decides) if a name repeats or the pairs are mixed."""
    try:
        if pairs[0][0].__class__ is bytes:
            each = {
                name.decode("latin-1").lower(): value.decode("latin-1")  # type: ignore[union-attr]
                for name, value in pairs
            }
        else:
            each = {
                name.lower(): value
                for name, value in pairs
                if name.__class__ is str and value.__class__ is str
            }
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    return each if len(each) == len(pairs) else None


def _text(value: _Text) -> str:
    """A header name or value as text: bytes (and bytes-like) as Latin-1, as HTTP/1.1 has it."""
    return value if isinstance(value, str) else bytes(value).decode("latin-1")
