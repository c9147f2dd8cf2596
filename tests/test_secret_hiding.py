"""No secret, API key or store password in the ``repr``, ``str`` or ``vars`` of any public object.

Error trackers capture local variables by ``repr`` and debug toolbars show
``vars``; a receiver's objects must be safe to show in both, and so must
everything they hold, a few attributes deep.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hubsig
from hubsig._check import DeliveryCheck
from hubsig._receiver import Receiver
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.fastapi import VerifiedDelivery
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware
from tests.conftest import use_static_secrets

SECRET = "TOP-SECRET-value-1234"
API_KEY = "API-KEY-value-5678"
SETTINGS: dict[str, Any] = {"secret": SECRET, "api_keys": [API_KEY]}


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    return []


def _check() -> DeliveryCheck:
    config = hubsig.WebhookConfig(**SETTINGS)
    headers = hubsig.Headers({"x-api-key": API_KEY, "x-hub-signature": hubsig.sign(b"{}", SECRET)})
    view = hubsig.RequestView("POST", "/", headers)
    check = DeliveryCheck(Receiver.of(config), view, hubsig.TraceContext.new(), 0.0)
    use_static_secrets(check)
    return check


HOLDERS: dict[str, Callable[[], object]] = {
    "WebhookConfig": lambda: hubsig.WebhookConfig(**SETTINGS),
    "WebhookConfig (rotation)": lambda: hubsig.WebhookConfig(secret={"k1": SECRET, "k2": "other"}),
    "Verifier": lambda: hubsig.Verifier([SECRET, SECRET.encode()]),
    "IncrementalVerification": lambda: hubsig.Verifier(SECRET).begin(hubsig.sign(b"", SECRET)),
    "WebhookEndpoint": lambda: hubsig.webhook(**SETTINGS)(lambda payload: None),
    "ASGI middleware": lambda: ASGIMiddleware(_asgi_app, **SETTINGS),
    "WSGI middleware": lambda: WSGIMiddleware(_wsgi_app, **SETTINGS),
    "VerifiedDelivery": lambda: VerifiedDelivery(**SETTINGS),
    "DeliveryCheck": _check,
    "RequestView": lambda: _check().request,
}

# Public classes that are never given a secret or an API key to hold.
HOLD_NO_SECRET = {
    "AsyncDeliveryStore", "BodyTimeout", "BodyTooLarge", "Claim", "ConfigurationError",
    "DedupePolicy", "Delivery", "DeliveryStore", "DisallowedAlgorithm", "Entity", "Event",
    "EventType", "EventsPayload", "EventsResponse", "Headers", "IncompleteBody",
    "InteractionSubtype", "InvalidApiKey", "LengthRequired", "MalformedPayload",
    "MalformedRequest", "MalformedSignature", "MediaType", "MethodNotAllowed", "MissingSignature",
    "NoSecret", "NotVerified", "ReceiverBusy", "Scheme", "TooManyEvents", "SecretWhitespaceWarning",
    "SignatureMismatch", "SinkUnavailable", "StoreUnavailable", "TraceContext", "TraceIdFilter",
    "UnsupportedAlgorithm", "Verification", "WebhookError", "WebhookSettings",
}  # fmt: skip


def test_every_public_class_is_checked_or_holds_no_secret() -> None:
    public = {name for name in hubsig.__all__ if inspect.isclass(getattr(hubsig, name, None))}
    checked = {name.split(" ")[0] for name in HOLDERS}
    assert public - checked - HOLD_NO_SECRET == set()


def _shown(value: object) -> list[str]:
    texts = [repr(value), str(value)]
    if hasattr(value, "__dict__"):
        texts.append(repr(vars(value)))
        texts.extend(repr(item) for item in vars(value).values())
    return texts


@pytest.mark.parametrize("name", HOLDERS)
def test_no_secret_or_api_key_is_shown(name: str) -> None:
    value = HOLDERS[name]()
    for text in _shown(value):
        for hidden in (SECRET, API_KEY, SECRET.encode().hex(), API_KEY.encode().hex()):
            assert hidden not in text
        assert hubsig.sign(b"{}", SECRET).split("=")[1] not in text or name in {
            "DeliveryCheck",
            "RequestView",
        }


def test_headers_show_names_not_values() -> None:
    headers = hubsig.Headers({"x-api-key": API_KEY})
    assert API_KEY not in repr(headers)


# --- the same, a few attributes deep, and for the stores' passwords ---------------------

PASSWORD = "STORE-PASSWORD-value-9012"
HIDDEN = (SECRET, API_KEY, PASSWORD)

PUBLIC_SETTINGS = {(hubsig.WebhookConfig, "secret"), (hubsig.WebhookConfig, "api_keys")}
"""The settings a user gave ``WebhookConfig``, which ``config.secret`` reads back by design:
never in its ``repr`` or ``str``, and it has no ``vars``."""


def _children(value: object) -> Iterator[tuple[str, object]]:
    """What ``value`` holds: items of containers, ``vars`` and ``__slots__`` of objects."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"[{key!r}]", key
            yield f"[{key!r}]", item
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        yield from ((f"[{index}]", item) for index, item in enumerate(value))
        return
    if isinstance(value, (type, types.ModuleType, types.FunctionType, types.MethodType)):
        return  # a class, a module or a function is code, not what the object holds
    attributes = dict(getattr(value, "__dict__", {}))
    for cls in type(value).__mro__:
        slots = getattr(cls, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            skipped = (cls, name) in PUBLIC_SETTINGS
            if not skipped and hasattr(value, name):
                attributes.setdefault(name, getattr(value, name))
    yield from ((f".{name}", item) for name, item in attributes.items())


def shown(value: object, depth: int = 3, path: str = "") -> Iterator[tuple[str, str]]:
    """``(where, text)`` for the ``repr`` and ``str`` of ``value`` and of everything it
    holds, ``depth`` levels down (through attributes, slots, dicts, lists and tuples)."""
    seen: set[int] = set()
    level: list[tuple[str, object]] = [(path or type(value).__name__, value)]
    for _ in range(depth + 1):
        deeper: list[tuple[str, object]] = []
        for where, item in level:
            if id(item) in seen:
                continue
            seen.add(id(item))
            yield where, repr(item)
            yield where, str(item)
            deeper.extend((where + step, child) for step, child in _children(item))
        level = deeper


def leaks(value: object) -> list[str]:
    return [
        where
        for where, text in shown(value)
        for hidden in HIDDEN
        if hidden in text or hidden.encode().hex() in text
    ]


@pytest.mark.parametrize(
    "name", [name for name in HOLDERS if name not in {"DeliveryCheck", "RequestView"}]
)
def test_no_secret_is_shown_by_anything_a_public_object_holds(name: str) -> None:
    """(A ``DeliveryCheck`` holds the request, whose headers carry the API key by nature.)"""
    assert leaks(HOLDERS[name]()) == []


def test_api_keys_are_held_in_no_slot() -> None:
    config = hubsig.WebhookConfig(**SETTINGS)
    assert API_KEY not in repr(config.api_key_bytes)


def test_the_walk_finds_a_secret_held_deep_inside() -> None:
    class Holder:
        def __init__(self) -> None:
            self.inner = {"list": [("pair", PASSWORD)]}

    assert leaks(Holder()) != []


def _with_password(url: str) -> str:
    if "://postgres@" not in url:
        pytest.skip("the PostgreSQL URL names no user to add a password to")
    return url.replace("://postgres@", f"://postgres:{PASSWORD}@", 1)


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.redis_server import RedisServer, can_start

    if not can_start():
        pytest.skip("needs redis-server, to start one that asks for a password")
    server = RedisServer(tmp_path_factory.mktemp("redis-password"), password=PASSWORD)
    server.start()
    yield server.url
    server.stop()


def _receivers_of(store: Any) -> dict[str, object]:
    """Every public object that would hold ``store`` (WSGI takes only synchronous stores)."""
    receivers: dict[str, object] = {
        "store": store,
        "WebhookEndpoint": hubsig.webhook(secret=SECRET, store=store)(lambda payload: None),
        "ASGI middleware": ASGIMiddleware(_asgi_app, secret=SECRET, store=store),
    }
    if store.blocking:
        receivers["WSGI middleware"] = WSGIMiddleware(_wsgi_app, secret=SECRET, store=store)
    return receivers


def test_a_redis_stores_password_is_shown_nowhere_after_it_connected(
    redis_with_password: str,
) -> None:
    from hubsig.stores.redis import AsyncRedisStore, RedisStore

    store = RedisStore(redis_with_password)
    store.check()  # connects and authenticates: the password was used
    assert store.claim(["a"], 5, "token") == [hubsig.Claim.CLAIMED]
    for name, value in _receivers_of(store).items():
        assert leaks(value) == [], name
    store.close()

    async def async_store() -> None:
        store = AsyncRedisStore(redis_with_password)
        await store.check()
        assert await store.claim(["b"], 5, "token") == [hubsig.Claim.CLAIMED]
        for name, value in _receivers_of(store).items():
            assert leaks(value) == [], name
        await store.close()

    asyncio.run(async_store())


def test_a_postgres_stores_password_is_shown_nowhere_after_it_connected(
    postgres_url: str,
) -> None:
    from hubsig.stores.postgres import AsyncPostgresStore, PostgresStore
    from tests.conftest import fresh_table

    url = _with_password(postgres_url)
    store = PostgresStore(url, table=fresh_table())
    store.check()
    assert store.claim(["a"], 5, "token") == [hubsig.Claim.CLAIMED]  # a connection is kept
    for name, value in _receivers_of(store).items():
        assert leaks(value) == [], name
    store.close()

    async def async_store() -> None:
        store = AsyncPostgresStore(url, table=fresh_table())
        await store.check()
        assert await store.claim(["b"], 5, "token") == [hubsig.Claim.CLAIMED]
        for name, value in _receivers_of(store).items():
            assert leaks(value) == [], name
        await store.close()

    asyncio.run(async_store())


def test_a_postgres_conninfo_that_cannot_be_parsed_is_refused_without_repeating_it() -> None:
    pytest.importorskip("psycopg")
    from hubsig.stores.postgres import PostgresStore

    with pytest.raises(hubsig.ConfigurationError) as raised:
        PostgresStore(f"host=127.0.0.1 password={PASSWORD} port")
    assert PASSWORD not in str(raised.value)


def test_stores_from_urls_with_passwords_show_them_nowhere_before_connecting(
    tmp_path: Path,
) -> None:
    """Built, never used (no server needed): what a store holds from the start."""
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    from hubsig.stores.postgres import AsyncPostgresStore, PostgresStore
    from hubsig.stores.redis import AsyncRedisStore, RedisStore

    for url in (f"redis://:{PASSWORD}@127.0.0.1:1/0", f"redis://user:{PASSWORD}@127.0.0.1:1/0"):
        assert leaks(RedisStore(url)) == []
        assert leaks(AsyncRedisStore(url)) == []
    for conninfo in (
        f"postgresql://user:{PASSWORD}@127.0.0.1:1/db",
        f"host=127.0.0.1 port=1 user=user password={PASSWORD} sslpassword={PASSWORD}",
    ):
        assert leaks(PostgresStore(conninfo)) == []
        assert leaks(AsyncPostgresStore(conninfo)) == []
