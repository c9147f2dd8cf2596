"""WebhookConfig: validated once, shared by every adapter."""

from __future__ import annotations

from typing import Any

import pytest

import hubsig
from hubsig import ConfigurationError, Headers, InvalidApiKey, NoSecret, RequestView, WebhookConfig
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.asgi import Receive, Scope, Send
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware
from hubsig.wsgi import StartResponse, WSGIEnvironment


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the app is never called in these tests")


def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    raise AssertionError("the app is never called in these tests")


def test_guards_exact_paths_and_prefixes() -> None:
    config = WebhookConfig(secret="s", paths=["/hook", "/channels/"])
    assert config.guards("/hook")
    assert not config.guards("/hook/extra")
    assert config.guards("/channels/chat")
    assert not config.guards("/health")
    assert WebhookConfig(secret="s").guards("/anything")


@pytest.mark.parametrize(
    "settings",
    [
        {"secret": None},
        {"secret": "s", "paths": []},
        {"secret": "s", "paths": ["no-slash"]},
        {"secret": "s", "max_body_size": -1},
        {"secret": "s", "max_body_size": True},
        {"secret": "s", "header_name": ""},
        {"secret": "s", "api_keys": []},
    ],
)
def test_invalid_settings_raise_at_construction(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        WebhookConfig(**settings)
    with pytest.raises(ConfigurationError):
        ASGIMiddleware(asgi_app, **settings)
    with pytest.raises(ConfigurationError):
        WSGIMiddleware(wsgi_app, **settings)


def test_middleware_takes_a_config_or_settings_not_both() -> None:
    config = WebhookConfig(secret="s")
    assert ASGIMiddleware(asgi_app, config=config).config is config
    with pytest.raises(TypeError):
        ASGIMiddleware(asgi_app, config=config, secret="s")


def test_resolved_secrets_share_one_verifier_per_distinct_set() -> None:
    config = WebhookConfig(secret=lambda request: ["a", "b"])
    first = config.verifier_for(["a", "b"])
    assert config.verifier_for(["a", "b"]) is first
    assert config.verifier_for(["a"]) is not first
    with pytest.raises(NoSecret):
        config.verifier_for(None)
    with pytest.raises(NoSecret):
        config.verifier_for("")


def test_resolver_sees_a_read_only_view_of_the_request() -> None:
    seen: list[RequestView] = []

    def resolver(request: RequestView) -> str:
        seen.append(request)
        return "s"

    config = WebhookConfig(secret=resolver)
    view = RequestView("POST", "/hooks/chat", Headers({"X-Channel": "chat"}))
    assert config.resolve(view) == "s"
    assert seen[0].headers["x-channel"] == "chat"
    with pytest.raises(AttributeError):
        seen[0].path = "/other"  # type: ignore[misc]


def test_api_keys_compare_in_constant_time_against_every_key() -> None:
    config = WebhookConfig(secret="s", api_keys=["first", "second"])
    config.check_api_key(Headers({"x-api-key": "second"}))
    for headers in ({}, {"x-api-key": "third"}, {"x-api-key": "é"}):
        with pytest.raises(InvalidApiKey):
            config.check_api_key(Headers(headers))


def test_header_name_is_case_insensitive() -> None:
    config = WebhookConfig(secret="s", header_name="X-Hub-Signature-256", algorithms="sha256")
    assert config.header_name == "x-hub-signature-256"
    assert config.algorithms == ("sha256",)
    assert hubsig.ALGORITHMS[0] not in config.algorithms
