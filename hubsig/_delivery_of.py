"""``delivery_of``: the one way a handler reads its verified delivery, in any framework.

The adapters leave the ``Delivery`` where each protocol keeps per-request
state: ``scope["state"]["hubsig"]`` (ASGI) and ``environ["hubsig.delivery"]``
(WSGI). A handler that reads it through ``delivery_of`` cannot run on a
request that did not pass verification, whatever the routing did: there is
nothing to read, and ``NotVerified`` is raised instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsig._delivery import Delivery
from hubsig._log_text import hubsig_logger
from hubsig.errors import NotVerified

__all__ = ["ANSWERED", "ENVIRON_KEY", "STATE_KEY", "delivery_of", "register_key"]

STATE_KEY = "hubsig"
"""Where the ASGI adapters put the delivery: ``scope["state"][STATE_KEY]``."""
ENVIRON_KEY = "hubsig.delivery"
"""Where the WSGI adapters put the delivery: ``environ[ENVIRON_KEY]``."""

logger = hubsig_logger("hubsig")
_MAPPING_KEYS: list[object] = [ENVIRON_KEY]


class _Answered:
    """What the adapters leave in place of a delivery once its request is answered: small,
    so a scope the server keeps holds no body, and telling, so ``delivery_of`` says why."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<the delivery of an answered request>"


ANSWERED = _Answered()


def register_key(key: object) -> None:
    """Also look for the delivery under ``key`` in a request that is a mapping itself
    (aiohttp's typed ``web.RequestKey``)."""
    if key not in _MAPPING_KEYS:
        _MAPPING_KEYS.append(key)


def delivery_of(request: object) -> Delivery:
    """The verified ``Delivery`` of ``request``, or ``NotVerified`` if it has none.

    ``request`` is a framework's request object (Starlette, FastAPI, Quart,
    Litestar, Django, Flask, werkzeug), an ASGI scope or a WSGI environ.
    ``NotVerified`` is logged at ERROR: it means a request reached a handler
    without passing hubsig, a routing or configuration mistake to fix. The
    delivery is there while the app handles the request (background tasks
    included); work that outlives the request should keep the ``Delivery``.
    """
    try:  # an ASGI framework's request (Starlette, FastAPI, ...): the usual case, first
        kept: Delivery = request.scope["state"][STATE_KEY]  # type: ignore[attr-defined]
    except (AttributeError, KeyError, TypeError):
        pass
    else:
        if kept.__class__ is Delivery:
            return kept
    try:  # a WSGI framework's request (Flask, werkzeug, Django): the other usual case
        kept = request.environ[ENVIRON_KEY]  # type: ignore[attr-defined]
    except (AttributeError, KeyError, TypeError):
        pass
    else:
        if kept.__class__ is Delivery:
            return kept
    sources = _sources(request)
    for source in sources:
        found = _found_in(source)
        if found is not None:
            return found
    if any(_answered(source) for source in sources):
        logger.error(
            "a delivery was asked for after its request was answered (%s): work that outlives "
            "the request must keep the Delivery it was given",
            type(request).__name__,
        )
        raise NotVerified("this request was answered; its delivery is no longer kept with it")
    logger.error(
        "a handler asked for the delivery of a request hubsig did not verify (%s): check "
        "that the middleware's paths= cover this route, or that hubsig's view decorator "
        "sits beneath the route decorator",
        type(request).__name__,
    )
    raise NotVerified("this request was not verified by hubsig")


def _sources(request: object) -> list[Mapping[Any, Any]]:
    """The per-request mappings a request object exposes: environ/META (WSGI), scope (ASGI)."""
    if isinstance(request, Mapping):
        return [request]
    sources = []
    for attribute in ("environ", "META", "env", "scope"):  # env: Falcon
        value = getattr(request, attribute, None)
        if isinstance(value, Mapping):
            sources.append(value)
    return sources


def _found_in(source: Mapping[Any, Any]) -> Delivery | None:
    for key in _MAPPING_KEYS:
        candidate = source.get(key)
        if isinstance(candidate, Delivery):
            return candidate
    state = source.get("state")
    if isinstance(state, Mapping):
        candidate = state.get(STATE_KEY)
        if isinstance(candidate, Delivery):
            return candidate
    return None


def _answered(source: Mapping[Any, Any]) -> bool:
    state = source.get("state")
    return isinstance(state, Mapping) and state.get(STATE_KEY) is ANSWERED
