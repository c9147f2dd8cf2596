"""The ``hubsig`` command: sign a body, or verify a delivery the way a receiver would.

Exit status: 0 when the command did what was asked (for ``verify``, the
signature matched), 1 with a one-line reason when a delivery is refused,
2 for usage errors such as a missing secret or an unreadable file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from hubsig.algorithms import ALGORITHMS
from hubsig.errors import ConfigurationError, WebhookError
from hubsig.models import EventsPayload
from hubsig.payload import parse_events
from hubsig.verifier import Verifier, sign

__all__ = ["main", "main_entry"]

SECRET_ENV = "HUBSIG_SECRET"  # noqa: S105 (the variable's name, not a secret)


class UsageError(Exception):
    """A problem with how the command was called (exit status 2)."""


def main(argv: Sequence[str] | None = None, stdin: BinaryIO | None = None) -> int:
    """Run the command line; returns the exit status instead of exiting."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        body = _read_body(arguments.file, stdin or sys.stdin.buffer)
        secrets = _secrets(arguments)
        if arguments.command == "sign":
            print(sign(body, secrets[0], arguments.algorithm, encoding=arguments.encoding))
            return 0
        return _verify(arguments, body, secrets)
    except (UsageError, ConfigurationError) as error:
        print(f"hubsig: {error}", file=sys.stderr)
        return 2


def _verify(arguments: argparse.Namespace, body: bytes, secrets: list[str]) -> int:
    algorithms = arguments.algorithm or ALGORITHMS
    verifier = Verifier(secrets, algorithms=algorithms, encoding=arguments.encoding)
    try:
        result = verifier.verify(body, arguments.signature)
        payload = parse_events(body, strict=arguments.strict) if arguments.parse else None
    except WebhookError as error:
        print(f"refused ({error.code}, HTTP {error.status}): {error.message}")
        return 1
    print(f"signature OK: {result.algorithm}, key #{result.key_index} of {len(secrets)}")
    if payload is not None:
        _print_events(payload)
    return 0


def _print_events(payload: EventsPayload) -> None:
    print(f"operation {payload.operation_id or '-'}: {len(payload.events)} event(s)")
    for event in payload.events:
        entity = event.entity
        fields = (
            (entity.id, entity.media_type, entity.interaction_subtype)
            if entity is not None
            else (None, None, None)
        )
        shown = [_shown(event.event_type), *(_shown(value) for value in fields)]
        print("  " + " ".join(shown))


def _shown(value: object) -> str:
    if value is None:
        return "-"
    return str(getattr(value, "value", value))


def _read_body(file: str | None, stdin: BinaryIO) -> bytes:
    if file is None or file == "-":
        return stdin.read()
    try:
        return Path(file).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {file}: {error.strerror}") from None


def _secrets(arguments: argparse.Namespace) -> list[str]:
    """Secrets from --secret, then --secret-file (one per line), then $HUBSIG_SECRET."""
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubsig",
        description="Sign and verify X-Hub-Signature webhook deliveries.",
        epilog=f"Secrets: prefer ${SECRET_ENV} or --secret-file; --secret shows in process lists.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sign_command = commands.add_parser("sign", help="print the X-Hub-Signature value for a body")
    _add_common(sign_command)
    sign_command.add_argument(
        "--algorithm", default="sha1", choices=ALGORITHMS, help="HMAC hash (default: sha1)"
    )

    verify_command = commands.add_parser(
        "verify", help="check a body against a signature header, as a receiver would"
    )
    _add_common(verify_command)
    verify_command.add_argument(
        "--signature", required=True, metavar="HEADER", help="the header value, e.g. sha1=…"
    )
    verify_command.add_argument(
        "--algorithm",
        action="append",
        choices=ALGORITHMS,
        help="accept only this algorithm (repeatable; default: all)",
    )
    verify_command.add_argument(
        "--parse", action="store_true", help="also parse the body and list its events"
    )
    verify_command.add_argument(
        "--strict", action="store_true", help="with --parse: refuse unknown values and missing ids"
    )
    return parser


def _add_common(command: argparse.ArgumentParser) -> None:
    command.add_argument("file", nargs="?", metavar="FILE", help="the raw body (default: stdin)")
    command.add_argument(
        "--secret", action="append", metavar="SECRET", help="a secret (repeatable, for rotation)"
    )
    command.add_argument(
        "--secret-file",
        action="append",
        metavar="PATH",
        help="a file with one secret per line (repeatable)",
    )
    command.add_argument(
        "--encoding",
        default="hex",
        choices=("hex", "base64"),
        help="digest encoding (default: hex)",
    )


def main_entry() -> None:
    """Console-script entry point: run ``main`` and exit with its status."""
    sys.exit(main())
