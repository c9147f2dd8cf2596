"""Sphinx configuration: furo, MyST Markdown, an API reference from docstrings and type hints.

Build: ``sphinx-build -W -n docs docs/_build/html`` (warnings are errors, references nitpicky).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

import hubsig  # noqa: E402 (after the path above)

project = "hubsig"
author = "the hubsig authors"
copyright = "2026, the hubsig authors"
release = version = hubsig.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "cli_reference",
]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

html_theme = "furo"
html_title = f"hubsig {release}"
html_static_path = ["_static"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_mock_imports: list[str] = []

# References hubsig cannot resolve without the network (no intersphinx in CI): the standard
# library's and the frameworks' own types, and hubsig's private modules named in type hints.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(typing|typing_extensions|collections|collections\.abc|asyncio|sqlite3|re)(\..*)?",
    ),
    (r"py:.*", r"(pathlib|enum|types|logging|contextvars|http|io|datetime|threading)(\..*)?"),
    (
        r"py:.*",
        r"(psycopg|redis|starlette|fastapi|django|flask|werkzeug|aiohttp|_pytest|pytest|opentelemetry)(\..*)?",
    ),
    (r"py:.*", r"hubsig\._[a-z_]+\..*"),
    (r"py:.*", r"hubsig\.[a-z_.]+\._[a-z_]+"),  # a private helper named in a public alias
    (r"py:.*", r"(APIRoute|APIRouter)"),  # FastAPI's, shown by name in signatures
    (r"py:.*", r"(Any|Awaitable|Callable|Iterable|Iterator|Mapping|Sequence|AsyncIterator)"),
    (r"py:.*", r"(Path|Enum|TracebackType|Logger|LogRecord|Token|Message|Scope|Receive|Send)"),
    (r"py:.*", r"(ASGIApp|WSGIApp|WSGIEnvironment|StartResponse|NoReturn|Self|Unpack|TypeAlias)"),
    (r"py:.*", r"(T|P|R|F|HandlerT|ViewT|_T|hubsig\.flask\.ViewT|dict\[str)"),
    # type aliases, shown by name in signatures (hubsig.Secrets and others are documented)
    (r"py:.*", r"(kit\.)?(Secrets|SecretResolver|DigestEncoding|AnyStore|Resolved|HeaderSource)"),
    (r"py:.*", r"(kit\.)?(Signer|Handler|Middleware|Flask|StoreCheck|WebhookSettings)"),
    (r"py:.*", r"kit\..*"),
    (
        r"py:.*",
        r"(Sink|BodyBudget|Verifiers|NextChunk|NextChunkSync|CheckObserver|ExcInfo|HiddenValue)",
    ),
]
