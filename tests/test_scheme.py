"""``hubsig.Scheme`` and its presets: where a sender signs, with which hashes, in which encoding."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import hubsig
from hubsig import GENESYS_CLOUD, GENESYS_MULTICLOUD, GITHUB, WEBSUB, Scheme, WebhookConfig


@pytest.mark.parametrize(
    ("scheme", "header", "algorithms", "encoding"),
    [
        (GENESYS_MULTICLOUD, "X-Hub-Signature", ("sha1",), "hex"),
        (GENESYS_CLOUD, "X-Hub-Signature-256", ("sha256",), "base64"),
        (GITHUB, "X-Hub-Signature-256", ("sha256",), "hex"),
        (WEBSUB, "X-Hub-Signature", hubsig.ALGORITHMS, "hex"),
    ],
    ids=["genesys-multicloud", "genesys-cloud", "github", "websub"],
)
def test_each_preset_is_what_its_sender_sends(
    scheme: Scheme, header: str, algorithms: tuple[str, ...], encoding: str
) -> None:
    assert (scheme.header, scheme.algorithms, scheme.encoding) == (header, algorithms, encoding)
    assert scheme.field_name == header.lower()


def test_a_header_ending_in_256_allows_sha256_only_unless_told_otherwise() -> None:
    assert Scheme("X-Signature-256").algorithms == ("sha256",)
    assert Scheme("X-Signature").algorithms == hubsig.ALGORITHMS
    assert Scheme("X-Signature-256", ["sha1", "sha256"]).algorithms == ("sha1", "sha256")


@pytest.mark.parametrize(
    "arguments",
    [
        {"header": "X Hub Signature"},
        {"header": "X-Hub-Signature:"},
        {"header": ""},
        {"header": None},
        {"algorithms": ["md5"]},
        {"algorithms": []},
        {"encoding": "base32"},
    ],
    ids=["space", "colon", "empty", "none", "unknown-algorithm", "no-algorithm", "encoding"],
)
def test_a_scheme_that_cannot_work_is_refused_when_built(arguments: dict[str, Any]) -> None:
    with pytest.raises(hubsig.ConfigurationError):
        Scheme(**arguments)


def test_a_scheme_is_a_frozen_value() -> None:
    assert Scheme("X-Hub-Signature-256", ("sha256",), "hex") == GITHUB
    with pytest.raises(dataclasses.FrozenInstanceError):
        GITHUB.header = "X-Other"  # type: ignore[misc]


def test_the_parts_given_separately_replace_the_schemes_own() -> None:
    """``WebhookConfig(scheme=..., header_name=..., algorithms=..., encoding=...)``."""

    def scheme_of(**settings: Any) -> Scheme:
        config = WebhookConfig(secret="s", **settings)
        assert isinstance(config.scheme, Scheme)
        return config.scheme

    assert scheme_of() == WEBSUB
    assert scheme_of(scheme=GITHUB) == GITHUB
    assert scheme_of(scheme=GITHUB, encoding="base64") == GENESYS_CLOUD
    # a header alone brings its own default; with a named scheme, the scheme's algorithms stay
    assert scheme_of(header_name="X-Signature-256").algorithms == ("sha256",)
    assert scheme_of(scheme=GENESYS_MULTICLOUD, header_name="X-Sig-256").algorithms == ("sha1",)
    with pytest.raises(hubsig.ConfigurationError, match=r"hubsig\.Scheme"):
        WebhookConfig(secret="s", scheme="github")  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", [GENESYS_MULTICLOUD, GENESYS_CLOUD, GITHUB, WEBSUB])
def test_a_body_signed_in_a_schemes_terms_is_verified_under_it(scheme: Scheme) -> None:
    body = b'{"operationId":"op","data":{"entities":[]}}'
    header = hubsig.sign(body, "s3cret", scheme.algorithms[0], encoding=scheme.encoding)
    verifier = hubsig.Verifier("s3cret", algorithms=scheme.algorithms, encoding=scheme.encoding)
    assert verifier.verify(body, header).algorithm == scheme.algorithms[0]
