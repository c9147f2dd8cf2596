"""WebhookConfig's per-request checks: API keys, methods, guarded paths, resolved secrets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import hubsig
from hubsig import (
    ConfigurationError,
    Headers,
    InvalidApiKey,
    MethodNotAllowed,
    NoSecret,
    SignatureMismatch,
    Verifier,
    WebhookConfig,
)

# --- API keys ----------------------------------------------------------------------------------
from hubsig._check import check_api_key, check_method
from hubsig._config import SETTING_NAMES, config_from
from hubsig._receiver import _VERIFIER_CACHE_SIZE, Receiver, Verifiers

_RECEIVERS: dict[int, Receiver] = {}


def verifiers_of(config: WebhookConfig) -> Verifiers:
    """The verifiers of one receiver per configuration, as an adapter holds them."""
    receiver = _RECEIVERS.setdefault(id(config), Receiver.of(config, dedupe=False))
    assert receiver.config is config
    return receiver.verifiers


def _refusal(config: WebhookConfig, headers: Any) -> str | None:
    try:
        check_api_key(config, Headers(headers))
    except InvalidApiKey as error:
        return error.message
    return None


def test_without_api_keys_any_request_passes() -> None:
    config = WebhookConfig(secret="s")
    assert _refusal(config, {}) is None
    assert _refusal(config, {"x-api-key": "anything"}) is None


def test_every_configured_key_is_accepted_wherever_it_is_in_the_list() -> None:
    config = WebhookConfig(secret="s", api_keys=["first", "second", "third"])
    for key in ("first", "second", "third"):
        assert _refusal(config, {"X-Api-Key": key}) is None
    assert _refusal(WebhookConfig(secret="s", api_keys="only"), {"x-api-key": "only"}) is None


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "the x-api-key header is missing"),
        ({"x-api-key": ""}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "firs"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "first1"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "FIRST"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "first second"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "first\n"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "first\xa0"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "\x0bfirst"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "é"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "first\udcff"}, "the x-api-key header matches no configured key"),
        ({"x-api-key": "\udcff"}, "the x-api-key header matches no configured key"),
        ({"x-api-key-2": "first"}, "the x-api-key header is missing"),
    ],
)
def test_wrong_or_missing_api_keys_are_refused(headers: dict[str, str], message: str) -> None:
    config = WebhookConfig(secret="s", api_keys=["first", "second"])
    assert _refusal(config, headers) == message


def test_only_the_first_api_key_header_counts() -> None:
    config = WebhookConfig(secret="s", api_keys=["first"])
    assert _refusal(config, [("x-api-key", "first"), ("x-api-key", "wrong")]) is None
    assert _refusal(config, [("x-api-key", "wrong"), ("x-api-key", "first")]) is not None


_KEY_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FFF, exclude_categories=["Cs"]),
    min_size=1,
    max_size=20,
).filter(lambda key: key == key.strip())


@given(
    key=_KEY_TEXT,
    before=st.sampled_from(["", " ", "\t", " \t "]),
    after=st.sampled_from(["", " ", "\t"]),
)
@example(key="XK-123X", before="", after="")
@example(key="caf\u00e9", before=" ", after="")
@example(key="\u043a\u043b\u044e\u0447", before="\t", after=" ")
def test_a_key_matches_as_utf8_bytes_off_the_wire_with_spaces_or_tabs_around(
    key: str, before: str, after: str
) -> None:
    config = WebhookConfig(secret="s", api_keys=[key])
    wire = (before + key + after).encode("utf-8")
    assert _refusal(config, [(b"x-api-key", wire)]) is None  # ASGI and WSGI: read as Latin-1
    assert _refusal(config, [(b"x-api-key", wire + b"x")]) is not None
    assert _refusal(config, [(b"x-api-key", b"x" + wire.strip())]) is not None
    changed = (key[:-1] + chr(ord(key[-1]) ^ 1)).encode("utf-8")
    assert _refusal(config, [(b"x-api-key", changed)]) is not None


@pytest.mark.parametrize("key", ["plain-ascii", "\u043a\u043b\u044e\u0447", "\u20ac-key"])
def test_a_header_a_caller_already_decoded_as_utf8_matches_too(key: str) -> None:
    """Text past U+00FF cannot be Latin-1, so it is read as the UTF-8 it was decoded from."""
    config = WebhookConfig(secret="s", api_keys=[key])
    assert _refusal(config, {"x-api-key": f" {key}\t"}) is None
    assert _refusal(config, {"x-api-key": key + "\u0431"}) is not None


@pytest.mark.parametrize("value", [chr(0xD800), "first" + chr(0xDFFF), chr(0xDCFF)])
def test_a_lone_surrogate_in_a_decoded_api_key_header_is_refused_not_a_crash(value: str) -> None:
    config = WebhookConfig(secret="s", api_keys=["first"])
    assert _refusal(config, {"x-api-key": value}) == (
        "the x-api-key header matches no configured key"
    )


# --- methods -----------------------------------------------------------------------------------


def test_a_method_not_configured_is_a_405_naming_the_allowed_ones() -> None:
    config = WebhookConfig(secret="s", methods=["post", "PUT"])
    check_method(config, "POST")
    check_method(config, "PUT")
    for method in ("GET", "post", "DELETE", ""):
        with pytest.raises(MethodNotAllowed) as raised:
            check_method(config, method)
        assert raised.value.status == 405
        assert raised.value.headers == (("allow", "POST, PUT"),)
        assert raised.value.message == "this webhook accepts POST, PUT only"


# --- guarded paths -----------------------------------------------------------------------------


def test_the_config_holds_one_path_guard_built_from_its_settings() -> None:
    config = WebhookConfig(secret="s", paths=["/hook"])
    assert config.guard.paths == ("/hook",)
    assert config.guard.guards("/hook")
    assert not config.guard.guards("/health")
    exempt = WebhookConfig(secret="s", exempt="/health")
    assert (exempt.exempt, exempt.guard.exempt) == (("/health",), ("/health",))
    assert WebhookConfig(secret="s").guard.guards_everything


# --- resolved secrets --------------------------------------------------------------------------


@pytest.mark.parametrize("resolved", [None, "", b"", [], (), {}])
def test_a_resolver_with_no_secret_means_no_secret(resolved: Any) -> None:
    config = WebhookConfig(secret=lambda request: resolved)
    with pytest.raises(NoSecret) as raised:
        verifiers_of(config).verifier_for(resolved)
    assert (raised.value.status, raised.value.message) == (
        401,
        "no secret is configured for this request",
    )


@pytest.mark.parametrize("resolved", [[""], 42, ["ok", None], {"k": ""}])
def test_a_resolver_returning_something_unusable_is_a_server_bug(resolved: Any) -> None:
    config = WebhookConfig(secret=lambda request: resolved)
    with pytest.raises(
        ConfigurationError, match=r"^the secret resolver returned no usable secret: "
    ):
        verifiers_of(config).verifier_for(resolved)


def test_resolved_secrets_verify_with_the_configured_scheme() -> None:
    config = WebhookConfig(
        secret=lambda request: "s", header_name="x-sig", algorithms="sha256", encoding="base64"
    )
    verifier = verifiers_of(config).verifier_for(["old", "new"])
    assert (verifier.algorithms, verifier.encoding) == (("sha256",), "base64")
    body = b"{}"
    assert (
        verifier.verify(body, hubsig.sign(body, "new", "sha256", encoding="base64")).key_index == 1
    )
    with pytest.raises(SignatureMismatch):
        verifier.verify(body, hubsig.sign(body, "other", "sha256", encoding="base64"))
    static = Verifier("s")
    assert verifiers_of(config).verifier_for(static) is static


def test_the_verifier_cache_is_bounded() -> None:
    config = WebhookConfig(secret=lambda request: "s")
    first = verifiers_of(config).verifier_for("secret-0")
    assert verifiers_of(config).verifier_for("secret-0") is first
    for index in range(1, _VERIFIER_CACHE_SIZE):
        verifiers_of(config).verifier_for(f"secret-{index}")
    assert verifiers_of(config).verifier_for("secret-0") is first  # all of them still fit
    verifiers_of(config).verifier_for(
        f"secret-{_VERIFIER_CACHE_SIZE}"
    )  # one more set than the cache holds
    rebuilt = verifiers_of(config).verifier_for("secret-0")
    assert rebuilt is not first
    body = b"{}"
    assert rebuilt.verify(body, hubsig.sign(body, "secret-0")).key_index == 0


# --- misspelt settings ---------------------------------------------------------------


def _typos(name: str) -> set[str]:
    """One letter dropped, swapped with the next or replaced; two adjacent letters dropped."""
    typos = set()
    for i in range(len(name)):
        typos.add(name[:i] + name[i + 1 :])
        typos.add(name[:i] + "x" + name[i + 1 :])
        typos.add(name[:i] + name[i + 2 :])
        if i + 1 < len(name):
            typos.add(name[:i] + name[i + 1] + name[i] + name[i + 2 :])
    return typos


@pytest.mark.parametrize("name", ["config", *sorted(SETTING_NAMES)])
def test_a_misspelt_setting_is_named_with_the_setting_meant(name: str) -> None:
    """``confg`` once suggested ``encoding``: every small typo of every name suggests it."""
    known = {"config", *SETTING_NAMES}
    for typo in sorted(_typos(name) - known):
        with pytest.raises(ConfigurationError) as raised:
            config_from(None, {"secret": "s", typo: 1}, "adapter")
        assert f"did you mean {name!r}?" in str(raised.value), typo
