"""One receiver configuration: a plain value, validated once and shared by every adapter.

The ASGI and WSGI middleware and the ``@webhook`` endpoint all take the same
settings; building a ``WebhookConfig`` checks them, so a bad secret, path or
limit stops the app when it starts instead of failing each delivery. It
holds no state of its own: what changes while requests arrive (the body
budget, the verifiers built for a resolver's secrets) is the ``Receiver``'s.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from hubsig._algorithms import DigestEncoding
from hubsig._dedupe import AnyStore, AsyncDeliveryStore, DedupePolicy, DeliveryStore
from hubsig._headers import Headers
from hubsig._hidden import HiddenValue
from hubsig._paths import PathGuard
from hubsig._scheme import Scheme, scheme_with
from hubsig._secrets import Secrets
from hubsig._sink import Sink
from hubsig._verifier import Verifier
from hubsig.errors import ConfigurationError
from hubsig.stores.memory import MemoryStore

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_INFLIGHT_BYTES",
    "SETTING_NAMES",
    "RequestView",
    "SecretResolver",
    "WebhookConfig",
    "WebhookSettings",
    "config_from",
]

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
DEFAULT_BODY_TIMEOUT = 10.0
"""Seconds a body may take to arrive: the sender's own request timeout."""
DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_EVENTS = 1000
"""Events one delivery may hold: more would flood a store with claims (413 past it)."""


@dataclass(frozen=True, slots=True)
class RequestView:
    """What a secret resolver may look at: the method, the path and the headers, read-only."""

    method: str
    path: str
    headers: Headers


SecretResolver: TypeAlias = Callable[[RequestView], "Secrets | Awaitable[Secrets | None] | None"]
"""Returns the secret(s) for one request (e.g. by channel in the path), or ``None`` if none."""


class WebhookSettings(TypedDict, total=False):
    """Every setting an adapter takes as a keyword, typed, so editors complete them and a
    type checker catches a misspelt name or a wrong type. ``WebhookConfig`` documents each."""

    secret: Secrets | SecretResolver
    paths: Sequence[str] | None
    exempt: Sequence[str] | None
    max_body_size: int
    scheme: Scheme | None
    header_name: str | None
    algorithms: Iterable[str] | str | None
    encoding: DigestEncoding | None
    strict: bool
    api_keys: Sequence[str] | str | None
    acknowledge_rejections: bool
    store: AnyStore | None
    sink: Sink | None
    dedupe: DedupePolicy
    methods: Sequence[str]
    body_timeout: float
    max_inflight_bytes: int
    max_events: int


@dataclass(frozen=True, slots=True, eq=False)
class WebhookConfig:
    """How a receiver checks deliveries.

    ``secret`` is one secret, several (rotation), a key-id mapping, or a
    callable (sync or async) given a ``RequestView``. A middleware guards
    every request unless told otherwise: ``exempt`` lists the app's other
    routes, which pass unverified only when spelled exactly so, or
    ``paths`` the guarded ones, anything not plainly another path being
    guarded too (paths relative to where the app is mounted; an entry
    ending in ``/`` covers every path under it). ``methods`` are the
    methods a guarded path accepts (others get 405). ``scheme`` says where
    and how the sender signs (``WEBSUB`` by default); ``header_name``,
    ``algorithms`` and ``encoding`` override its parts. ``body_timeout``
    bounds the seconds a body may take to arrive (408 after), and
    ``max_inflight_bytes`` the body bytes held across all requests being
    read (503 past it). ``acknowledge_rejections`` answers refused
    deliveries with 200 and a non-zero code (the sender stops retrying)
    instead of their 4xx status. ``api_keys``, when given, requires a
    matching ``x-api-key`` header. ``store`` remembers processed events so
    each is processed once: a ``MemoryStore`` of this process unless given
    (a shared one for several processes), ``None`` to turn that off.
    ``sink`` (``hubsig.sinks``) takes each delivery's fresh events instead
    of the handler or app: hubsig answers 200 once the sink has made them
    durable, 503 with ``Retry-After`` when it could not.
    Neither secrets nor API keys appear in the ``repr``.
    """

    secret: Secrets | SecretResolver = field(repr=False)
    paths: Sequence[str] | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    exempt: Sequence[str] | None = None
    scheme: Scheme | None = None
    header_name: str | None = None
    algorithms: Iterable[str] | str | None = None
    encoding: DigestEncoding | None = None
    strict: bool = False
    api_keys: Sequence[str] | str | None = field(default=None, repr=False)
    acknowledge_rejections: bool = False
    store: AnyStore | None = field(default_factory=MemoryStore)
    sink: Sink | None = None
    dedupe: DedupePolicy = field(default_factory=DedupePolicy)
    methods: Sequence[str] = ("POST",)
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES
    max_events: int = DEFAULT_MAX_EVENTS
    guard: PathGuard = field(init=False, repr=False)
    """Which requests a middleware verifies (``paths``/``exempt``; see ``hubsig._paths``)."""
    scheme_header: str = field(init=False, repr=False)
    """The signature header's name in lower case."""
    api_key_bytes: HiddenValue[tuple[bytes, ...]] | None = field(init=False, repr=False)
    """The API keys as UTF-8 bytes (hidden from ``repr``), or ``None`` when off."""

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        _check_flag("strict", self.strict)
        _check_flag("acknowledge_rejections", self.acknowledge_rejections)
        _check_store(self.store)
        _check_sink(self.sink)
        if not isinstance(self.dedupe, DedupePolicy):
            raise ConfigurationError("dedupe must be a DedupePolicy, e.g. DedupePolicy(lease=60)")
        scheme = scheme_with(self.scheme, self.header_name, self.algorithms, self.encoding)
        set_field(self, "scheme", scheme)
        set_field(self, "header_name", scheme.field_name)
        set_field(self, "scheme_header", scheme.field_name)
        set_field(self, "algorithms", scheme.algorithms)
        set_field(self, "encoding", scheme.encoding)
        if not callable(self.secret):  # a bad secret stops the start-up, not a delivery
            Verifier(self.secret, algorithms=scheme.algorithms, encoding=scheme.encoding)
        guard = PathGuard(self.paths, self.exempt)
        set_field(self, "guard", guard)
        set_field(self, "paths", guard.paths)
        set_field(self, "exempt", guard.exempt)
        set_field(self, "methods", _check_methods(self.methods))
        _check_size("max_body_size", self.max_body_size)
        _check_size("max_inflight_bytes", self.max_inflight_bytes)
        if not isinstance(self.max_events, int) or isinstance(self.max_events, bool):
            raise ConfigurationError("max_events must be a positive whole number")
        if self.max_events <= 0:
            raise ConfigurationError("max_events must be a positive whole number")
        if self.max_inflight_bytes < self.max_body_size:
            raise ConfigurationError(
                "max_inflight_bytes must be at least max_body_size, or no body of the "
                "largest allowed size could ever be received"
            )
        timeout = self.body_timeout
        if (
            not isinstance(timeout, (int, float))
            or isinstance(timeout, bool)
            or not 0 < timeout < math.inf
        ):
            raise ConfigurationError("body_timeout must be a positive number of seconds")
        keys = _check_api_keys(self.api_keys)
        set_field(self, "api_key_bytes", HiddenValue(keys) if keys else None)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **settings: Unpack[WebhookSettings]
    ) -> WebhookConfig:
        """A configuration from the environment, for building at import time.

        Reads ``HUBSIG_SECRET`` (one secret) or ``HUBSIG_SECRET_FILE`` (one
        secret per line, for rotation), ``HUBSIG_SCHEME`` (a preset name:
        ``genesys-multicloud``, ``genesys-cloud``, ``github``, ``websub``),
        ``HUBSIG_API_KEYS`` (comma-separated), ``HUBSIG_MAX_BODY_SIZE`` and
        ``HUBSIG_BODY_TIMEOUT``; keywords set everything else and win over
        the environment. Raises ``ConfigurationError`` naming the variable
        when one is missing or unreadable.
        """
        from hubsig._environment import settings_from_env

        found = settings_from_env(os.environ if environ is None else environ)
        return config_from(None, {**found, **settings}, "WebhookConfig.from_env")


SETTING_NAMES = frozenset(WebhookSettings.__annotations__)


def settings_from_mapping(
    configured: Mapping[str, Any], where: Callable[[str], str]
) -> dict[str, Any]:
    """Settings written in a framework's configuration (Flask's ``app.config``, Django's
    ``settings.HUBSIG``): a scheme may be a preset's name, and a ``None`` value (an unset
    environment variable, usually) is refused naming where it was written."""
    from hubsig._scheme import SCHEMES

    settings: dict[str, Any] = {}
    for name, value in configured.items():
        if value is None and name != "store":  # store None: deduplication turned off
            raise ConfigurationError(f"{where(name)} is None: is its environment variable set?")
        if name == "scheme" and isinstance(value, str):
            if value not in SCHEMES:
                choices = ", ".join(sorted(SCHEMES))
                raise ConfigurationError(f"{where(name)} must be one of {choices}, not {value!r}")
            value = SCHEMES[value]
        settings[name] = value
    return settings


def config_from(
    config: WebhookConfig | None, settings: Mapping[str, Any], adapter: str
) -> WebhookConfig:
    """The adapters' two ways to be configured: a ready ``config=`` or its settings.

    Raises ``ConfigurationError`` naming ``adapter`` (and the closest known
    setting for a misspelt one), so the message points at the user's call.
    """
    if config is not None:
        if settings:
            raise ConfigurationError(f"{adapter}: pass either config= or settings, not both")
        if not isinstance(config, WebhookConfig):
            raise ConfigurationError(f"{adapter}: config must be a hubsig.WebhookConfig")
        return config
    for name in settings:
        if name not in SETTING_NAMES:
            close = difflib.get_close_matches(name, ("config", *sorted(SETTING_NAMES)), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"{adapter}: unknown setting {name!r}{hint}")
    if "secret" not in settings:
        raise ConfigurationError(f"{adapter}: secret= is required (or config=WebhookConfig(...))")
    try:
        return WebhookConfig(**settings)
    except ConfigurationError as error:
        raise ConfigurationError(f"{adapter}: {error}") from None


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {type(value).__name__}")


def _check_store(store: object) -> None:
    if store is None:
        return
    if isinstance(store, type):
        raise ConfigurationError(
            f"store must be a store instance, not the class: write {store.__name__}(...)"
        )
    if not isinstance(store, (DeliveryStore, AsyncDeliveryStore)):
        raise ConfigurationError(
            "store must have claim, complete and release methods and say whether they block "
            f"(a blocking attribute); {type(store).__name__} has not"
        )


def _check_sink(sink: object) -> None:
    if sink is None:
        return
    if isinstance(sink, type):
        raise ConfigurationError(
            f"sink must be a sink instance, not the class: write {sink.__name__}(...)"
        )
    if not isinstance(sink, Sink) or not isinstance(getattr(sink, "blocking", None), bool):
        raise ConfigurationError(
            "sink must have check and publish methods and say whether they block "
            f"(a blocking attribute, True or False); {type(sink).__name__} has not"
        )


def _check_size(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of bytes")


def _check_methods(methods: Sequence[str] | str) -> tuple[str, ...]:
    names = (methods,) if isinstance(methods, str) else tuple(methods)
    if not names or not all(isinstance(name, str) and name.isalpha() for name in names):
        raise ConfigurationError("methods must be one or more HTTP method names, such as 'POST'")
    return tuple(dict.fromkeys(name.upper() for name in names))


def _check_api_keys(api_keys: Sequence[str] | str | None) -> tuple[bytes, ...]:
    if api_keys is None:
        return ()
    keys = (api_keys,) if isinstance(api_keys, str) else tuple(api_keys)
    if not keys or not all(isinstance(key, str) and key.strip() for key in keys):
        raise ConfigurationError("api_keys must be one or more non-empty strings")
    return tuple(key.strip().encode("utf-8") for key in keys)
