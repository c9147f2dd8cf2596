"""A receiver: one configuration at work, with what outlives a request.

``WebhookConfig`` is a plain validated value; what changes while requests
arrive lives here: the in-flight body budget, the verifiers built for a
resolver's secrets, whether the store and sink passed their start-up check.
Every adapter builds one ``Receiver`` and hands it to each flow.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from hubsig._budget import BodyBudget
from hubsig._config import RequestView, SecretResolver, WebhookConfig
from hubsig._dedupe import AnyStore, DedupePolicy
from hubsig._secrets import Secrets, load_secrets
from hubsig._sink import Sink
from hubsig._verifier import Verifier
from hubsig.errors import ConfigurationError, NoSecret

__all__ = ["Receiver", "Resolved", "StoreCheck", "Verifiers"]

Resolved: TypeAlias = "Verifier | Secrets | None"
"""The secrets for one request once resolved: the static ``Verifier``, or a resolver's answer."""
_VERIFIER_CACHE_SIZE = 256


class StoreCheck:
    """Whether the receiver's store and sink passed their ``check()``; an async one's
    check runs at ASGI start-up (lifespan) or, failing that, before its first use."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False


class Verifiers:
    """The ``Verifier`` for each request's secrets: the static one, or one built per
    distinct set a resolver returns and then reused (at most 256 kept)."""

    __slots__ = ("_built", "_config", "static")

    def __init__(self, config: WebhookConfig) -> None:
        self._config = config
        self._built: dict[tuple[tuple[str | None, bytes], ...], Verifier] = {}
        secret = config.secret
        self.static = None if callable(secret) else self._build(secret)

    def resolve(self, request: RequestView) -> Secrets | Awaitable[Secrets | None] | None:
        """The resolver's answer (maybe awaitable) for ``request``; only for a configuration
        whose secret is a resolver (``static`` is ``None``)."""
        resolver: SecretResolver = self._config.secret  # type: ignore[assignment]
        return resolver(request)

    def verifier_for(self, resolved: Resolved) -> Verifier:
        """A ``Verifier`` for resolved secrets.

        Raises ``NoSecret`` when the resolver had none for this request (an
        unknown channel: the client's problem, 401), and ``ConfigurationError``
        when it returned something that is not a secret (the server's bug: the
        adapters answer 500 and log it at ERROR).
        """
        if isinstance(resolved, Verifier):
            return resolved
        if resolved is None or (
            isinstance(resolved, (str, bytes, Sequence, Mapping)) and not resolved
        ):
            raise NoSecret("no secret is configured for this request")
        try:
            loaded = load_secrets(resolved)
        except ConfigurationError as error:
            raise ConfigurationError(
                f"the secret resolver returned no usable secret: {error}"
            ) from None
        # Keyed by a digest, so the cache never holds (or shows) the secrets themselves.
        key = tuple((key_id, hashlib.sha256(secret).digest()) for key_id, secret in loaded)
        verifier = self._built.get(key)
        if verifier is None:
            if len(self._built) >= _VERIFIER_CACHE_SIZE:
                self._built.clear()
            verifier = self._built[key] = self._build(resolved)
        return verifier

    def _build(self, secrets: Secrets) -> Verifier:
        scheme = self._config.scheme
        assert scheme is not None  # set by WebhookConfig's validation
        return Verifier(secrets, algorithms=scheme.algorithms, encoding=scheme.encoding)

    def __repr__(self) -> str:
        return f"Verifiers(static={self.static is not None}, built={len(self._built)})"


@dataclass(frozen=True, slots=True, eq=False)
class Receiver:
    """What a flow needs that outlives one request: the configuration, the store with
    its policy when events are claimed (``store`` is ``None`` to verify only), the sink
    that takes the events instead of the handler, the in-flight budget and verifiers."""

    config: WebhookConfig
    store: AnyStore | None = None
    policy: DedupePolicy = field(default_factory=DedupePolicy)
    checked: StoreCheck = field(default_factory=StoreCheck, repr=False)
    sink: Sink | None = None
    budget: BodyBudget = field(init=False, repr=False)
    verifiers: Verifiers = field(init=False, repr=False)
    store_blocks: bool = field(init=False, repr=False)
    """Whether store calls wait on I/O, so async code runs them in a thread."""

    def __post_init__(self) -> None:
        """Check a synchronous store and sink now, so one that can never work stops
        start-up; an async one is checked at start-up (lifespan) or before first use."""
        object.__setattr__(self, "budget", BodyBudget(self.config.max_inflight_bytes))
        object.__setattr__(self, "verifiers", Verifiers(self.config))
        object.__setattr__(self, "store_blocks", bool(self.store and self.store.blocking))
        waiting = False
        for part in (self.store, self.sink):
            check = getattr(part, "check", None)
            if check is None:
                continue
            if inspect.iscoroutinefunction(check) or not getattr(part, "blocking", True):
                waiting = True
            else:
                check()
        self.checked.done = not waiting

    @classmethod
    def of(cls, config: WebhookConfig, *, dedupe: bool = True) -> Receiver:
        """The receiver for ``config``: with its store, if it names one and ``dedupe``."""
        store = config.store if dedupe else None
        return cls(config, store, config.dedupe, sink=config.sink)

    @property
    def store_is_async(self) -> bool:
        """Whether the store must be awaited (and so cannot serve a WSGI adapter)."""
        return self.store is not None and inspect.iscoroutinefunction(self.store.claim)

    def checks(self) -> list[tuple[Any, bool | None]]:
        """The store's and the sink's ``check`` methods, each with whether it blocks."""
        return [
            (part.check, getattr(part, "blocking", None))
            for part in (self.store, self.sink)
            if part is not None and hasattr(part, "check")
        ]
