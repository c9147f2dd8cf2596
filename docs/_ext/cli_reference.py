"""``{cli-reference}``: the command line's reference, generated from its argument parser.

Each subcommand becomes a section with its usage, description and options, as
``hubsig COMMAND --help`` prints them, so the page can never drift from the
parser.
"""

from __future__ import annotations

import argparse
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class CliReference(SphinxDirective):
    """Renders ``hubsig --help`` and each ``hubsig COMMAND --help``."""

    def run(self) -> list[nodes.Node]:
        import os

        from hubsig.cli import parser as build_parser

        os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal's width
        parser = build_parser()
        parser.prog = "hubsig"
        found: list[nodes.Node] = [nodes.literal_block(text=parser.format_help())]
        for name, command in _subcommands(parser).items():
            command.prog = f"hubsig {name}"
            section = nodes.section(ids=[f"hubsig-{name}"])
            section += nodes.title(text=f"hubsig {name}")
            section += nodes.literal_block(text=command.format_help(), language="text")
            found.append(section)
        return found


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-reference", CliReference)
    return {"parallel_read_safe": True, "version": "1"}
