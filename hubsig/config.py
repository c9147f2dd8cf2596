"""One receiver configuration, validated once and shared by every adapter.

The ASGI and WSGI middleware and the ``@webhook`` endpoint all take the same
settings; building a ``WebhookConfig`` checks them, so a bad secret, path or
limit stops the app when it starts instead of failing each delivery.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from hubsig.algorithms import ALGORITHMS, Algorithm, DigestEncoding, check_algorithms
from hubsig.dedupe import AnyStore, AsyncDeliveryStore, DedupePolicy, DeliveryStore
from hubsig.errors import ConfigurationError, InvalidApiKey, NoSecret
from hubsig.headers import Headers
from hubsig.keys import Secrets, load_secrets
from hubsig.verifier import Verifier

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "RequestView",
    "SecretResolver",
    "WebhookConfig",
    "config_from",
    "run_to_completion",
]

_T = TypeVar("_T")
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
_VERIFIER_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class RequestView:
    """What a secret resolver may look at: the method, the path and the headers, read-only."""

    method: str
    path: str
    headers: Headers


SecretResolver: TypeAlias = Callable[[RequestView], "Secrets | Awaitable[Secrets | None] | None"]
"""Returns the secret(s) for one request (e.g. by channel in the path), or ``None`` if none."""

Resolved: TypeAlias = "Verifier | Secrets | None"
"""The secrets for one request once resolved: the static ``Verifier``, or a resolver's answer."""


@dataclass(frozen=True, slots=True, eq=False)
class WebhookConfig:
    """How a receiver checks deliveries.

    ``secret`` is one secret, several (rotation), a key-id mapping, or a
    callable (sync or async) given a ``RequestView``. ``paths`` lists the
    guarded paths (all when ``None``); an entry ending in ``/`` guards every
    path under it. ``header_name`` is ``X-Hub-Signature`` or, for GitHub/Meta,
    ``X-Hub-Signature-256``. ``acknowledge_rejections`` answers refused
    deliveries with 200 and a non-zero code (the sender stops retrying)
    instead of their 4xx status. ``api_keys``, when given, requires a
    matching ``x-api-key`` header.
    """

    secret: Secrets | SecretResolver
    paths: Sequence[str] | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    header_name: str = "X-Hub-Signature"
    algorithms: Iterable[str] | str = ALGORITHMS
    encoding: DigestEncoding = "hex"
    strict: bool = False
    api_keys: Sequence[str] | str | None = None
    acknowledge_rejections: bool = False
    store: AnyStore | None = None
    dedupe: DedupePolicy = field(default_factory=DedupePolicy)
    _static: Verifier | None = field(init=False, repr=False)
    _api_keys: tuple[bytes, ...] = field(init=False, repr=False)
    _algorithms: tuple[Algorithm, ...] = field(init=False, repr=False)
    _verifiers: dict[tuple[tuple[str | None, bytes], ...], Verifier] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "_algorithms", check_algorithms(self.algorithms))
        set_field(self, "algorithms", self._algorithms)
        if callable(self.secret):
            set_field(self, "_static", None)
        else:
            set_field(self, "_static", self._build_verifier(self.secret))
        set_field(self, "_verifiers", {})
        set_field(self, "paths", _check_paths(self.paths))
        if (
            not isinstance(self.max_body_size, int)
            or isinstance(self.max_body_size, bool)
            or self.max_body_size <= 0
        ):
            raise ConfigurationError("max_body_size must be a positive number of bytes")
        name = self.header_name
        if not isinstance(name, str) or not name or not name.isascii() or " " in name:
            raise ConfigurationError("header_name must be an HTTP header name")
        set_field(self, "header_name", name.lower())
        set_field(self, "_api_keys", _check_api_keys(self.api_keys))
        if self.store is not None and not isinstance(
            self.store, (DeliveryStore, AsyncDeliveryStore)
        ):
            raise ConfigurationError("store must have claim, complete and release methods")

    def guards(self, path: str) -> bool:
        """Whether requests to ``path`` must carry a valid signature."""
        if self.paths is None:
            return True
        return any(
            path == guarded or (guarded.endswith("/") and path.startswith(guarded))
            for guarded in self.paths
        )

    def resolve(self, request: RequestView) -> Resolved | Awaitable[Secrets | None]:
        """The static ``Verifier``, or the resolver's answer (maybe awaitable) for ``request``."""
        if self._static is not None:
            return self._static
        resolver: SecretResolver = self.secret  # type: ignore[assignment]
        return resolver(request)

    def verifier_for(self, resolved: Resolved) -> Verifier:
        """A ``Verifier`` for resolved secrets, built once per distinct set and then reused.

        Raises ``NoSecret`` when the resolver had none for this request.
        """
        if isinstance(resolved, Verifier):
            return resolved
        if resolved is None or (not isinstance(resolved, (str, bytes)) and not resolved):
            raise NoSecret("no secret is configured for this request")
        try:
            key = tuple(load_secrets(resolved))
        except ConfigurationError:
            raise NoSecret("the secret configured for this request is unusable") from None
        verifier = self._verifiers.get(key)
        if verifier is None:
            if len(self._verifiers) >= _VERIFIER_CACHE_SIZE:
                self._verifiers.clear()
            verifier = self._verifiers[key] = self._build_verifier(resolved)
        return verifier

    def check_api_key(self, headers: Headers) -> None:
        """Raise ``InvalidApiKey`` unless api keys are off or ``x-api-key`` matches one."""
        if not self._api_keys:
            return
        received = headers.get("x-api-key")
        if received is None:
            raise InvalidApiKey("the x-api-key header is missing")
        candidate = received.strip().encode("latin-1", "replace")
        matched = False
        for key in self._api_keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise InvalidApiKey("the x-api-key header matches no configured key")

    def _build_verifier(self, secrets: Secrets) -> Verifier:
        return Verifier(secrets, algorithms=self._algorithms, encoding=self.encoding)


def config_from(config: WebhookConfig | None, settings: dict[str, Any]) -> WebhookConfig:
    """The adapters' two ways to be configured: a ready ``config=`` or its settings."""
    if config is not None and settings:
        raise TypeError("pass either config= or settings, not both")
    return config if config is not None else WebhookConfig(**settings)


def _check_paths(paths: Sequence[str] | None) -> tuple[str, ...] | None:
    if paths is None:
        return None
    if isinstance(paths, str):
        paths = (paths,)
    checked = tuple(paths)
    if not checked or not all(isinstance(path, str) and path.startswith("/") for path in checked):
        raise ConfigurationError("paths must be a non-empty list of paths starting with '/'")
    return checked


def _check_api_keys(api_keys: Sequence[str] | str | None) -> tuple[bytes, ...]:
    if api_keys is None:
        return ()
    keys = (api_keys,) if isinstance(api_keys, str) else tuple(api_keys)
    if not keys or not all(isinstance(key, str) and key.strip() for key in keys):
        raise ConfigurationError("api_keys must be one or more non-empty strings")
    return tuple(key.strip().encode("latin-1", "replace") for key in keys)


def run_to_completion(awaitable: Awaitable[_T]) -> _T:
    """Await ``awaitable`` from synchronous code (WSGI) on a private event loop."""

    async def wait() -> _T:
        return await awaitable

    return asyncio.run(wait())
