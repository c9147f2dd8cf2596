"""``hubsig sign`` and ``hubsig verify``: the core, on the command line.

``verify`` exits 0 when the signature matches, 1 with a one-line reason when
it does not; ``--explain`` adds the likely causes of a mismatch without ever
printing the expected digest.
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from hubsig._models import EventsPayload
from hubsig._payload import parse_events
from hubsig._verifier import Verifier, sign
from hubsig.cli.options import (
    add_scheme_arguments,
    add_secret_arguments,
    read_body,
    scheme_from,
    secrets_from,
)
from hubsig.diagnosis import explain_mismatch
from hubsig.errors import WebhookError

__all__ = ["add_commands", "run_sign", "run_verify"]


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sign_command = commands.add_parser("sign", help="print the X-Hub-Signature value for a body")
    _add_body_arguments(sign_command)
    add_scheme_arguments(sign_command, many_algorithms=False)
    sign_command.add_argument(
        "--explain", action="store_true", help="also describe the body's bytes on stderr"
    )
    sign_command.set_defaults(run=run_sign)

    verify_command = commands.add_parser(
        "verify", help="check a body against a signature header, as a receiver would"
    )
    _add_body_arguments(verify_command)
    verify_command.add_argument(
        "--signature", required=True, metavar="HEADER", help="the header value, e.g. sha1=…"
    )
    add_scheme_arguments(verify_command, many_algorithms=True)
    verify_command.add_argument(
        "--parse", action="store_true", help="also parse the body and list its events"
    )
    verify_command.add_argument(
        "--strict", action="store_true", help="with --parse: refuse unknown values and missing ids"
    )
    verify_command.add_argument(
        "--explain", action="store_true", help="on a mismatch, list the likely causes"
    )
    verify_command.set_defaults(run=run_verify)


def run_sign(arguments: argparse.Namespace, stdin: BinaryIO) -> int:
    body = read_body(arguments.body, stdin)
    secret = secrets_from(arguments)[0]
    scheme = scheme_from(arguments)
    algorithm = arguments.algorithm or scheme.algorithms[0]
    print(sign(body, secret, algorithm, encoding=scheme.encoding))
    if arguments.explain:
        for note in _body_notes(body):
            print(f"note: {note}", file=sys.stderr)
    return 0


def run_verify(arguments: argparse.Namespace, stdin: BinaryIO) -> int:
    body = read_body(arguments.body, stdin)
    secrets = secrets_from(arguments)
    scheme = scheme_from(arguments)
    algorithms = scheme.algorithms
    verifier = Verifier(secrets, algorithms=algorithms, encoding=scheme.encoding)
    try:
        result = verifier.verify(body, arguments.signature)
        payload = parse_events(body, strict=arguments.strict) if arguments.parse else None
    except WebhookError as error:
        print(f"refused ({error.code}, HTTP {error.status}): {error.message}")
        if arguments.explain and error.status == 401:
            for finding in explain_mismatch(
                body, arguments.signature, secrets, algorithms=algorithms
            ):
                print(f"  - {finding.message}")
        return 1
    print(f"signature OK: {result.algorithm}, key #{result.key_index} of {len(secrets)}")
    if payload is not None:
        _print_events(payload)
    return 0


def _body_notes(body: bytes) -> list[str]:
    notes = [f"the body is {len(body)} bytes"]
    if body.endswith(b"\n"):
        notes.append("it ends with a newline, which is signed too")
    if b"\r" in body:
        notes.append("it contains carriage returns, which are signed too")
    return notes


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


def _add_body_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "body", nargs="?", metavar="BODY", help="a file with the raw body (default: stdin)"
    )
    add_secret_arguments(command)
