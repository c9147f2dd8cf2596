"""No secret or API key in the ``repr``, ``str`` or ``vars`` of any public object.

Error trackers capture local variables by ``repr`` and debug toolbars show
``vars``; a receiver's objects must be safe to show in both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

import hubsig
from hubsig._receiver import DeliveryCheck
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.dependency import VerifiedDelivery
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
    check = DeliveryCheck(
        config, hubsig.RequestView("POST", "/", headers), hubsig.TraceContext.new()
    )
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
    "SignatureMismatch", "StoreUnavailable", "TraceContext", "TraceIdFilter",
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
