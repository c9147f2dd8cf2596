"""What every ``hubsig`` subcommand shares: secrets, bodies, and usage errors."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import BinaryIO

from hubsig._algorithms import ALGORITHMS
from hubsig._scheme import SCHEMES, Scheme, scheme_with
from hubsig.errors import UsageError

SECRET_ENV = "HUBSIG_SECRET"  # noqa: S105 (the variable's name, not a secret)


class DefaultsShown(argparse.HelpFormatter):
    """Help that ends each option with its default, unless its help already says it or it
    has none (``None``: the option is off, or falls back as its help explains)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return action.help
        return f"{text} (default: %(default)s)"


def add_secret_arguments(command: argparse.ArgumentParser) -> None:
    """``--secret`` (repeatable) and ``--secret-file``; ``$HUBSIG_SECRET`` is read when neither."""
    command.add_argument(
        "--secret",
        action="append",
        metavar="SECRET",
        help=f"a secret (repeatable, for rotation); prefer ${SECRET_ENV} or --secret-file, "
        "since arguments show in process lists",
    )
    command.add_argument(
        "--secret-file",
        action="append",
        metavar="PATH",
        help="a file with one secret per line (repeatable)",
    )


def add_scheme_arguments(command: argparse.ArgumentParser, *, many_algorithms: bool) -> None:
    """``--scheme`` and the parts it sets, each replaceable: ``--header-name``, ``--algorithm``,
    ``--encoding``. ``many_algorithms``: ``--algorithm`` is an allow-list (repeatable)."""
    command.add_argument(
        "--scheme",
        choices=sorted(SCHEMES),
        help="the sender's signature scheme (default: websub, X-Hub-Signature with sha1 to "
        "sha512 in hex; genesys-multicloud is sha1 only)",
    )
    command.add_argument(
        "--header-name",
        metavar="NAME",
        help="the signature header's name (default: the scheme's)",
    )
    if many_algorithms:
        command.add_argument(
            "--algorithm",
            action="append",
            choices=ALGORITHMS,
            help="accept only this HMAC hash (repeatable; default: the scheme's)",
        )
    else:
        command.add_argument(
            "--algorithm",
            choices=ALGORITHMS,
            help="the HMAC hash (default: the scheme's first, sha1 for websub)",
        )
    command.add_argument(
        "--encoding",
        choices=("hex", "base64"),
        help="digest encoding (default: the scheme's)",
    )


def scheme_from(arguments: argparse.Namespace) -> Scheme:
    """The scheme ``add_scheme_arguments`` describes."""
    base = SCHEMES[arguments.scheme] if arguments.scheme else None
    return scheme_with(base, arguments.header_name, arguments.algorithm, arguments.encoding)


def secrets_from(arguments: argparse.Namespace) -> list[str]:
    """Secrets from --secret, then --secret-file (one per line), else $HUBSIG_SECRET."""
    secrets: list[str] = list(arguments.secret or [])
    for path in arguments.secret_file or []:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            raise UsageError(f"cannot read the secret file {path}") from None
        secrets.extend(line for line in lines if line)
    if not secrets and os.environ.get(SECRET_ENV):
        secrets.append(os.environ[SECRET_ENV])
    if not secrets:
        raise UsageError(f"no secret: set {SECRET_ENV}, or pass --secret-file or --secret")
    return secrets


def read_body(file: str | None, stdin: BinaryIO) -> bytes:
    """The raw body from FILE, or standard input when FILE is absent or ``-``."""
    if file is None or file == "-":
        return stdin.read()
    try:
        return Path(file).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {file}: {error.strerror}") from None


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above zero (else a usage error)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def need(module: str, extra: str = "cli") -> None:
    """Fail with a usage error naming the extra to install when an optional module is missing."""
    try:
        __import__(module)
    except ImportError:
        raise UsageError(f"this command needs {module}: pip install 'hubsig[{extra}]'") from None


def sink_url(text: str) -> str:
    """An argparse type: a URL ``hubsig.sinks.sink_from_url`` understands, by its scheme
    (the rest is checked when the sink is built)."""
    from hubsig.sinks import SCHEMES

    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in SCHEMES:
        raise argparse.ArgumentTypeError(
            "expected redis://HOST:PORT/DB?stream=NAME, nats://HOST:PORT?stream=NAME or "
            "celery+redis://HOST:PORT/DB?task=NAME"
        )
    return text
