"""Where telemetry plugs into the delivery flow, without importing any telemetry library.

``observer`` is ``None`` until ``hubsig.otel.instrument()`` sets it; the flow
then hands every delivery's generator to ``observer.observe``, which passes
each effect through while it records spans and metrics. Uninstrumented, the
flow pays one global lookup per delivery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Generator

    from hubsig._config import RequestView
    from hubsig._trace import TraceContext

__all__ = ["Observer", "handler_failed", "observer"]


class Observer(Protocol):
    """Wraps one delivery's flow: yields what it yields, returns what it returns."""

    def observe(
        self, flow: Generator[Any, Any, Any], request: RequestView, trace: TraceContext
    ) -> Generator[Any, Any, Any]: ...

    def failed(self, error: BaseException) -> None:
        """A handler or app raised ``error``, which its adapter caught and answered."""


observer: Observer | None = None


def handler_failed(error: BaseException) -> None:
    """Tell telemetry about an exception an adapter caught (it is not re-raised)."""
    if observer is not None:
        observer.failed(error)
