"""``hubsig.errors`` holds every exception hubsig defines, and draws their tree."""

from __future__ import annotations

import inspect
import pkgutil
from importlib import import_module

import hubsig
from hubsig import errors


def _modules() -> list[str]:
    names = ["hubsig"]
    for info in pkgutil.walk_packages(hubsig.__path__, "hubsig."):
        if info.name.endswith("__main__") or info.name.startswith(("hubsig.django",)):
            continue  # runs the command line; needs Django configured
        names.append(info.name)
    return names


def _framework_bound(error: type[BaseException]) -> bool:
    """An exception a framework must recognise (a Starlette ``HTTPException``) lives with it."""
    return any(not base.__module__.startswith(("hubsig", "builtins")) for base in error.__mro__)


def test_every_exception_hubsig_defines_is_defined_in_errors() -> None:
    elsewhere = []
    for name in _modules():
        module = import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and name != "hubsig.errors"
                and not value.__name__.startswith("_")  # a module's own control flow
                and not _framework_bound(value)
            ):
                elsewhere.append(f"{name}.{value.__name__}")
    assert elsewhere == []


def test_the_docstring_draws_every_exception_of_the_module() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert f" {name} " in doc or f"─ {name}" in doc, name
