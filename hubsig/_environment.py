"""Receiver settings from ``HUBSIG_*`` environment variables, for ``WebhookConfig.from_env``.

A secret belongs in the environment or a file, not in code; reading it here,
at import time, means a missing or unreadable one stops the app before it
serves anything, with a message that names the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hubsig._log_text import hubsig_logger
from hubsig._scheme import SCHEMES
from hubsig.errors import ConfigurationError

__all__ = ["ENVIRONMENT_VARIABLES", "settings_from_env"]

logger = hubsig_logger("hubsig")
PREFIX = "HUBSIG_"


def _secret_file(value: str) -> list[str]:
    try:
        lines = Path(value).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"cannot read the secret file: {error}") from None
    secrets = [line for line in lines if line.strip()]
    if not secrets:
        raise ConfigurationError("the secret file holds no secret")
    return secrets


def _scheme(value: str) -> Any:
    try:
        return SCHEMES[value.strip().lower()]
    except KeyError:
        choices = ", ".join(sorted(SCHEMES))
        raise ConfigurationError(f"must be one of {choices}, not {value[:40]!r}") from None


def _number(kind: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def read(value: str) -> Any:
        try:
            return kind(value.strip())
        except ValueError:
            raise ConfigurationError(f"must be {what}, not {value[:20]!r}") from None

    return read


def _api_keys(value: str) -> list[str]:
    return [key.strip() for key in value.split(",") if key.strip()]


ENVIRONMENT_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "HUBSIG_SECRET": ("secret", str),
    "HUBSIG_SECRET_FILE": ("secret", _secret_file),
    "HUBSIG_SCHEME": ("scheme", _scheme),
    "HUBSIG_API_KEYS": ("api_keys", _api_keys),
    "HUBSIG_MAX_BODY_SIZE": ("max_body_size", _number(int, "a whole number of bytes")),
    "HUBSIG_BODY_TIMEOUT": ("body_timeout", _number(float, "a number of seconds")),
}
"""Each variable ``from_env`` reads, the setting it fills, and how its text is read."""

_OTHER_TOOLS = frozenset({"HUBSIG_REDIS_URL"})


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the ``HUBSIG_*`` variables in ``environ`` give.

    Raises ``ConfigurationError`` when neither ``HUBSIG_SECRET`` nor
    ``HUBSIG_SECRET_FILE`` is set (or both are), or a value is unreadable;
    logs a WARNING for an unknown ``HUBSIG_`` name, the usual sign of a typo.
    """
    present = [name for name in ("HUBSIG_SECRET", "HUBSIG_SECRET_FILE") if environ.get(name)]
    empty = [name for name in ("HUBSIG_SECRET", "HUBSIG_SECRET_FILE") if environ.get(name) == ""]
    if not present and empty:
        raise ConfigurationError(f"{empty[0]} is set but empty")
    if len(present) != 1:
        raise ConfigurationError(
            "set exactly one of HUBSIG_SECRET and HUBSIG_SECRET_FILE"
            + (" (both are set)" if present else "")
        )
    settings: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(PREFIX):
            continue
        known = ENVIRONMENT_VARIABLES.get(name)
        if known is None:
            if name not in _OTHER_TOOLS:
                logger.warning(
                    "ignoring %s: hubsig reads %s", name, ", ".join(ENVIRONMENT_VARIABLES)
                )
            continue
        if not value:
            continue
        setting, read = known
        try:
            settings[setting] = read(value)
        except ConfigurationError as error:
            raise ConfigurationError(f"{name} {error}") from None
    return settings
