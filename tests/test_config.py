"""WebhookConfig: validated once, shared by every adapter."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import hubsig
from hubsig import ConfigurationError, Headers, InvalidApiKey, NoSecret, RequestView, WebhookConfig
from hubsig._check import check_api_key
from hubsig._receiver import Receiver, Verifiers
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.asgi import Receive, Scope, Send
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware
from hubsig.wsgi import StartResponse, WSGIEnvironment


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the app is never called in these tests")


_RECEIVERS: dict[int, Receiver] = {}


def verifiers_of(config: WebhookConfig) -> Verifiers:
    """The verifiers of one receiver per configuration, as an adapter holds them."""
    receiver = _RECEIVERS.setdefault(id(config), Receiver.of(config, dedupe=False))
    assert receiver.config is config
    return receiver.verifiers


def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    raise AssertionError("the app is never called in these tests")


def test_guards_exact_paths_and_prefixes() -> None:
    guard = WebhookConfig(secret="s", paths=["/hook", "/channels/"]).guard
    assert guard.guards("/hook")
    assert not guard.guards("/hook/extra")
    assert guard.guards("/channels/chat")
    assert not guard.guards("/health")
    assert WebhookConfig(secret="s").guard.guards("/anything")


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
    with pytest.raises(ConfigurationError, match="HubSignatureMiddleware: pass either"):
        ASGIMiddleware(asgi_app, config=config, secret="s")


def test_resolved_secrets_share_one_verifier_per_distinct_set() -> None:
    config = WebhookConfig(secret=lambda request: ["a", "b"])
    first = verifiers_of(config).verifier_for(["a", "b"])
    assert verifiers_of(config).verifier_for(["a", "b"]) is first
    assert verifiers_of(config).verifier_for(["a"]) is not first
    with pytest.raises(NoSecret):
        verifiers_of(config).verifier_for(None)
    with pytest.raises(NoSecret):
        verifiers_of(config).verifier_for("")


def test_resolver_sees_a_read_only_view_of_the_request() -> None:
    seen: list[RequestView] = []

    def resolver(request: RequestView) -> str:
        seen.append(request)
        return "s"

    config = WebhookConfig(secret=resolver)
    view = RequestView("POST", "/hooks/chat", Headers({"X-Channel": "chat"}))
    assert verifiers_of(config).resolve(view) == "s"
    assert seen[0].headers["x-channel"] == "chat"
    with pytest.raises(AttributeError):
        seen[0].path = "/other"  # type: ignore[misc]


def test_api_keys_compare_in_constant_time_against_every_key() -> None:
    config = WebhookConfig(secret="s", api_keys=["first", "second"])
    check_api_key(config, Headers({"x-api-key": "second"}))
    for headers in ({}, {"x-api-key": "third"}, {"x-api-key": "é"}):
        with pytest.raises(InvalidApiKey):
            check_api_key(config, Headers(headers))


def test_header_name_is_case_insensitive() -> None:
    config = WebhookConfig(secret="s", header_name="X-Hub-Signature-256", algorithms="sha256")
    assert config.header_name == "x-hub-signature-256"
    assert config.algorithms == ("sha256",)
    assert hubsig.ALGORITHMS[0] not in config.algorithms


@pytest.mark.parametrize(
    "settings",
    [
        {"secret": "   "},
        {"secret": ["good", "\n\t"]},
        {"secret": "s", "header_name": "X-Hub-Signature:"},
        {"secret": "s", "header_name": "X Hub"},
        {"secret": "s", "scheme": "github"},
        {"secret": "s", "methods": []},
        {"secret": "s", "methods": ["PO ST"]},
        {"secret": "s", "body_timeout": 0},
        {"secret": "s", "body_timeout": float("inf")},
        {"secret": "s", "body_timeout": "10"},
        {"secret": "s", "max_inflight_bytes": 0},
        {"secret": "s", "max_body_size": 2048, "max_inflight_bytes": 1024},
        {"secret": "s", "paths": 42},
    ],
)
def test_more_invalid_settings_raise_at_construction(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        WebhookConfig(**settings)


def test_non_latin1_api_keys_match_only_their_utf8_bytes() -> None:
    """Both sides were once encoded with Latin-1 'replace': '????' matched a Cyrillic key."""
    key = "ключ-секрет-2026"
    config = WebhookConfig(secret="s", api_keys=[key])
    wire = key.encode("utf-8").decode("latin-1")  # how a server hands over UTF-8 header bytes
    check_api_key(config, Headers({"x-api-key": wire}))
    for forged in ("????-??????-2026", key.encode("utf-8", "replace").decode("ascii", "replace")):
        with pytest.raises(InvalidApiKey):
            check_api_key(config, Headers({"x-api-key": forged}))
    with pytest.raises(InvalidApiKey):
        check_api_key(config, Headers([(b"x-api-key", b"????-??????-2026")]))
    check_api_key(config, Headers([(b"x-api-key", key.encode("utf-8"))]))


def test_a_header_named_256_allows_sha256_only_unless_told_otherwise() -> None:
    config = WebhookConfig(secret="s", header_name="X-Hub-Signature-256")
    assert config.algorithms == ("sha256",)
    body = b"{}"
    verifier = Receiver.of(config).verifiers.static
    assert verifier is not None
    for header in (hubsig.sign(body, "s", "sha1"), hubsig.sign(body, "s", "sha512")):
        with pytest.raises(hubsig.DisallowedAlgorithm):
            verifier.verify(body, header)
    widened = WebhookConfig(secret="s", header_name="X-Hub-Signature-256", algorithms=["sha1"])
    assert widened.algorithms == ("sha1",)


@pytest.mark.parametrize(
    ("scheme", "header", "algorithms", "encoding"),
    [
        (hubsig.GENESYS_MULTICLOUD, "X-Hub-Signature", ("sha1",), "hex"),
        (hubsig.GENESYS_CLOUD, "X-Hub-Signature-256", ("sha256",), "base64"),
        (hubsig.GITHUB, "X-Hub-Signature-256", ("sha256",), "hex"),
        (hubsig.WEBSUB, "X-Hub-Signature", ("sha1", "sha256", "sha384", "sha512"), "hex"),
    ],
)
def test_scheme_presets(
    scheme: hubsig.Scheme, header: str, algorithms: tuple[str, ...], encoding: str
) -> None:
    assert (scheme.header, scheme.algorithms, scheme.encoding) == (header, algorithms, encoding)
    config = WebhookConfig(secret="s", scheme=scheme)
    assert (config.header_name, config.algorithms, config.encoding) == (
        header.lower(),
        algorithms,
        encoding,
    )


def test_scheme_parts_can_be_replaced_one_at_a_time() -> None:
    config = WebhookConfig(secret="s", scheme=hubsig.GITHUB, encoding="base64")
    assert config.scheme == hubsig.GENESYS_CLOUD
    assert WebhookConfig(secret="s").scheme == hubsig.WEBSUB
    assert hubsig.Scheme("X-Signature").algorithms == hubsig.WEBSUB.algorithms


def test_whitespace_only_secrets_are_refused_but_binary_keys_are_not() -> None:
    with pytest.raises(ConfigurationError, match="only whitespace"):
        hubsig.Verifier(" \n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hubsig.SecretWhitespaceWarning)
        hubsig.Verifier(b"\x0b" * 20)  # RFC 4231 test case 1: a key, not a paste accident


@pytest.mark.parametrize("returned", [123, ["ok", 4.5], " \t", object()])
def test_a_resolver_returning_a_non_secret_is_the_servers_error(
    returned: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a 401 'no_secret' blamed on the client: a 500, and an ERROR naming the cause."""
    from tests.adapters import ADAPTERS, Sent

    config = WebhookConfig(secret=lambda request: returned)
    sent = Sent([b"{}"], {"X-Hub-Signature": hubsig.sign(b"{}", "s")})
    for adapter in ADAPTERS.values():
        caplog.clear()
        answer = adapter(config, sent)
        assert answer.status == 500
        assert not answer.reached_app
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert errors
        assert errors[0].exc_info is not None
        assert "secret resolver returned no usable secret" in str(errors[0].exc_info[1])
