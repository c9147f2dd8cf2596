"""Settings from ``HUBSIG_*`` variables (``WebhookConfig.from_env``): each read, each mistake a
``ConfigurationError`` naming its variable, a misspelt name a WARNING."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import hubsig
from hubsig import GITHUB, WebhookConfig, WebhookEndpoint
from hubsig.testing import make_events
from tests.harness import Sent, call_wsgi


def status_of(config: WebhookConfig, secret: str, **headers: str) -> int:
    """What a receiver built from ``config`` answers a fresh delivery signed with ``secret``."""
    endpoint = WebhookEndpoint(lambda payload: None, config=config)
    body = make_events(1).to_json()
    scheme = config.scheme
    assert isinstance(scheme, hubsig.Scheme)
    signature = hubsig.sign(body, secret, scheme.algorithms[0], encoding=scheme.encoding)
    return call_wsgi(endpoint.wsgi, Sent([body], {scheme.header: signature, **headers})).status


def test_every_variable_is_read() -> None:
    config = WebhookConfig.from_env(
        {
            "HUBSIG_SECRET": "s3cret",
            "HUBSIG_SCHEME": " GitHub ",
            "HUBSIG_API_KEYS": "k1, k2,,",
            "HUBSIG_MAX_BODY_SIZE": "2048",
            "HUBSIG_BODY_TIMEOUT": "2.5",
            "PATH": "/usr/bin",
        }
    )
    assert config.scheme == GITHUB
    assert (config.max_body_size, config.body_timeout) == (2048, 2.5)
    assert status_of(config, "s3cret", **{"X-API-Key": "k2"}) == 200
    assert status_of(config, "s3cret", **{"X-API-Key": "k3"}) == 401
    assert status_of(config, "other", **{"X-API-Key": "k1"}) == 401


def test_a_secret_file_holds_one_secret_per_line_for_rotation(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("new-secret\n\nold-secret\n", encoding="utf-8")
    config = WebhookConfig.from_env({"HUBSIG_SECRET_FILE": str(secrets)})
    assert [status_of(config, s) for s in ("new-secret", "old-secret", "other")] == [200, 200, 401]


def test_keywords_win_over_the_environment() -> None:
    config = WebhookConfig.from_env(
        {"HUBSIG_SECRET": "s", "HUBSIG_MAX_BODY_SIZE": "10"}, max_body_size=20
    )
    assert config.max_body_size == 20


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "set exactly one of HUBSIG_SECRET and HUBSIG_SECRET_FILE"),
        ({"HUBSIG_SECRET": ""}, "HUBSIG_SECRET is set but empty"),
        ({"HUBSIG_SECRET": "a", "HUBSIG_SECRET_FILE": "f"}, "(both are set)"),
        ({"HUBSIG_SECRET_FILE": "/nonexistent/secrets"}, "cannot read the secret file"),
        ({"HUBSIG_SECRET": "s", "HUBSIG_SCHEME": "githb"}, "must be one of"),
        ({"HUBSIG_SECRET": "s", "HUBSIG_MAX_BODY_SIZE": "1MB"}, "a whole number of bytes"),
        ({"HUBSIG_SECRET": "s", "HUBSIG_BODY_TIMEOUT": "soon"}, "a number of seconds"),
    ],
    ids=["none", "empty", "both", "unreadable-file", "scheme", "size", "timeout"],
)
def test_a_missing_or_unreadable_setting_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(hubsig.ConfigurationError) as refused:
        WebhookConfig.from_env(environ)
    assert message in str(refused.value)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "secrets"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(hubsig.ConfigurationError, match="holds no secret"):
        WebhookConfig.from_env({"HUBSIG_SECRET_FILE": str(empty)})


def test_a_misspelt_variable_is_a_warning_and_another_tools_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="hubsig"):
        WebhookConfig.from_env(
            {"HUBSIG_SECRET": "s", "HUBSIG_SECERT": "x", "HUBSIG_REDIS_URL": "redis://r"}
        )
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 1
    assert warned[0].startswith("ignoring HUBSIG_SECERT: hubsig reads HUBSIG_SECRET")
