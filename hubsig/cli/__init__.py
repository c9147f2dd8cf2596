"""The ``hubsig`` command: sign and verify bodies, simulate the sender, run a receiver, demo.

Exit status: 0 when the command did what was asked, 1 when a delivery was
refused (or, for ``send`` and ``demo``, an outcome was not the expected
one), 2 for usage errors such as a missing secret or an unreadable file.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import BinaryIO

from hubsig import __version__
from hubsig.cli import demo, sending, serving, signing
from hubsig.cli.options import SECRET_ENV
from hubsig.errors import ConfigurationError, UsageError

__all__ = ["main", "main_entry"]


def main(argv: Sequence[str] | None = None, stdin: BinaryIO | None = None) -> int:
    """Run the command line; returns the exit status instead of exiting."""
    arguments = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one plain line, not Python's source excerpt
        try:
            status: int = arguments.run(arguments, stdin or sys.stdin.buffer)
        except (UsageError, ConfigurationError) as error:
            print(f"hubsig: {error}", file=sys.stderr)
            return 2
    return status


def _show_warning(message: Warning | str, *details: object, **more: object) -> None:
    print(f"hubsig: warning: {message}", file=sys.stderr)


def main_entry() -> None:
    """Console-script entry point: run ``main`` and exit with its status.

    When the reader of standard output goes away (``hubsig send … | head -1``)
    it exits quietly with 141, the status of a process ended by SIGPIPE,
    instead of a ``BrokenPipeError`` traceback.
    """
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)
    sys.exit(status)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="hubsig",
        description="Sign, verify, send and receive X-Hub-Signature webhook deliveries.",
        epilog=f"Secrets: prefer ${SECRET_ENV} or --secret-file; --secret shows in process lists.",
    )
    root.add_argument("--version", action="version", version=f"hubsig {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    signing.add_commands(commands)
    sending.add_command(commands)
    serving.add_command(commands)
    demo.add_command(commands)
    return root
