"""Mutation testing of the security core: ``.venv/bin/python -m fuzz.mutation``.

Copies the working tree to a temporary directory, configures mutmut 3 there
(never in the checkout), mutates the functions in ``SCOPE``, runs the fast
tests in ``TESTS`` against each mutant and prints killed / total per module
and every surviving mutant; the ``DESELECT`` tests, which cannot run under
mutmut, are then run on their own against each survivor. Exits 1 if any
survived. ``--at COMMIT`` tests a commit instead of the work tree; ``--keep``
keeps the copy, so ``mutmut show NAME`` can be run in it; ``--diff`` prints
each survivor's diff; ``--telemetry`` runs every test with ``hubsig.otel`` instrumented
(``HUBSIG_TEST_TELEMETRY=1``, see tests/conftest.py), so the decision is shown to be the
same code whether telemetry watches it or not. Not part of the test suite: it takes minutes.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).parent / "mutmut"
_IN_CLASS = "x\u01c1{}\u01c1"  # how mutmut names a method's mutants: xǁClassǁmethod__mutmut_N

SCOPE: dict[str, tuple[str, ...]] = {
    "hubsig/_verifier.py": ("*",),
    "hubsig/_secrets.py": ("*",),
    "hubsig/_signature_header.py": ("*",),
    "hubsig/_paths.py": ("*",),
    "hubsig/_budget.py": ("*",),
    "hubsig/_check.py": (
        _IN_CLASS.format("DeliveryCheck") + "*",
        "x_check_api_key__mutmut_*",
        "x_check_method__mutmut_*",
        "x__wire_bytes__mutmut_*",  # the bytes check_api_key compares
        "x_declared_length__mutmut_*",
    ),
    "hubsig/_receiver.py": (_IN_CLASS.format("Verifiers") + "*",),
    "hubsig/_replies.py": ("x_rejection__mutmut_*",),
}
TESTS = (
    "tests/test_verifier.py",
    "tests/test_verifier_slow_path.py",
    "tests/test_signature_header.py",
    "tests/test_secrets.py",
    "tests/test_paths.py",
    "tests/test_check.py",
    "tests/test_flow.py",
    "tests/test_budget.py",
    "tests/test_config.py",
    "tests/test_config_checks.py",
    "tests/test_hostile.py",
    "tests/test_adapters.py",
)
# Tests that walk the call stack cannot pass under mutmut, whose trampolines add frames:
# they are left out of the mutmut run, then run without mutmut (``mutmut apply``) against
# each survivor of the module they check. Only that module: ``mutmut apply`` can rewrite
# the wrong method when two classes of one module share a name (``verify`` in verifier.py).
DESELECT = {
    "hubsig/_secrets.py": (
        "tests/test_secrets.py::test_the_whitespace_warning_points_at_the_callers_line",
    )
}
_SKIP = (".venv", ".git", "mutants", "__pycache__", "*_cache", ".hypothesis", ".coverage")
_KILLED = {1, 3}  # a test failed, or pytest itself broke
_TIMEOUT = {24, -24, 36, 152, 255}


def patterns(module: str) -> list[str]:
    """The mutant names mutmut gives the in-scope functions of ``module``."""
    dotted = module.removesuffix(".py").replace("/", ".")
    return [f"{dotted}.{pattern}" for pattern in SCOPE[module]]


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run mutmut in the copy, its output (stdout and stderr) captured."""
    return subprocess.run(  # noqa: S603 (the venv's own mutmut, no shell)
        [str(MUTMUT), *args],
        cwd=work,
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def copy_tree(work: Path, commit: str | None) -> None:
    """Copy the work tree (or ``commit``'s files) to ``work``, without caches or the venv."""
    if commit is None:
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(*_SKIP))
        return
    command = ["git", "archive", commit]
    archive = subprocess.run(command, cwd=ROOT, capture_output=True, check=True)  # noqa: S603 (git, no shell)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as files:
        files.extractall(work, filter="data")


def configure(work: Path) -> None:
    """Append the mutmut settings to the copy's ``pyproject.toml``."""
    settings = {
        "source_paths": ["hubsig"],
        "only_mutate": list(SCOPE),
        "also_copy": ["examples"],
        "pytest_add_cli_args_test_selection": [t for t in TESTS if (work / t).exists()],
        # the same hypothesis examples for every mutant, so a run is reproducible
        "pytest_add_cli_args": [
            *("-p", "no:cacheprovider", "--hypothesis-seed=0"),
            *(f"--deselect={test}" for tests in DESELECT.values() for test in tests),
        ],
    }
    lines = ["", "[tool.mutmut]", *(f"{key} = {json.dumps(v)}" for key, v in settings.items())]
    with (work / "pyproject.toml").open("a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")


def results(work: Path, module: str) -> dict[str, int]:
    """mutmut's exit code for each in-scope mutant of ``module``."""
    meta = json.loads((work / "mutants" / f"{module}.meta").read_text(encoding="utf-8"))
    wanted = patterns(module)
    return {
        name: code
        for name, code in meta["exit_code_by_key"].items()
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in wanted)
    }


def killed_by_deselected(work: Path, module: str, name: str) -> bool:
    """Whether the ``DESELECT`` tests, run without mutmut, fail with mutant ``name`` applied."""
    tests = [test for test in DESELECT.get(module, ()) if (work / test.partition("::")[0]).exists()]
    if not tests:
        return False
    source = work / module
    original = source.read_bytes()
    try:
        mutmut(work, "apply", name)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
        run = subprocess.run(command, cwd=work, capture_output=True, check=False)  # noqa: S603
        return run.returncode == 1  # tests failed (not: none found, or pytest broke)
    finally:
        source.write_bytes(original)


def report(work: Path, show_diff: bool) -> int:
    """Print killed / total per module and the survivors; return how many survived."""
    survivors: list[str] = []
    all_killed = all_total = 0
    for module in SCOPE:
        codes = results(work, module)
        alive = sorted(name for name, code in codes.items() if code not in _KILLED | _TIMEOUT)
        rescued = [name for name in alive if killed_by_deselected(work, module, name)]
        survivors += [name for name in alive if name not in rescued]
        killed = len(codes) - len(alive) + len(rescued)
        timeouts = sum(code in _TIMEOUT for code in codes.values())
        notes = [f"{timeouts} by timeout"] * bool(timeouts)
        notes += [f"{len(rescued)} by the deselected tests"] * bool(rescued)
        note = f" ({', '.join(notes)})" if notes else ""
        print(f"{module:28} {killed:4} / {len(codes):4} killed{note}")
        all_killed += killed
        all_total += len(codes)
    print(f"{'all':28} {all_killed:4} / {all_total:4} killed")
    for name in survivors:
        print(f"survived: {name}")
        if show_diff:
            print(mutmut(work, "show", name).stdout)
    return len(survivors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--diff", action="store_true", help="print each survivor's diff")
    parser.add_argument("--at", metavar="COMMIT", help="test a commit instead of the work tree")
    parser.add_argument("--telemetry", action="store_true", help="with hubsig.otel instrumented")
    options = parser.parse_args()
    if options.telemetry:
        os.environ["HUBSIG_TEST_TELEMETRY"] = "1"
    work = Path(tempfile.mkdtemp(prefix="hubsig-mutation-")) / "repo"
    copy_tree(work, options.at)
    configure(work)
    names = [pattern for module in SCOPE for pattern in patterns(module)]
    log = work / "mutmut.log"
    run = mutmut(work, "run", *names)
    log.write_text(run.stdout, encoding="utf-8")
    if run.returncode != 0:
        print(run.stdout[-4000:])
        print(f"mutmut failed ({run.returncode}); its log: {log}")
        return 2
    survived = report(work, options.diff)
    if options.keep:
        print(f"the copy, with mutmut's results: {work}")
    else:
        shutil.rmtree(work.parent)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
