"""The hubsig command: sign and verify, exit statuses, and secrets from every source."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hubsig.cli import main
from tests.known_answers import SEED_SECRET

SEED_SIGNATURE = "sha1=e3d3007e146383be10fab977fe735465cebc29d2"
EXAMPLE = Path(__file__).parent.parent / "examples" / "delivery.json"


def run(argv: list[str], stdin: bytes = b"") -> int:
    return main(argv, stdin=io.BytesIO(stdin))


def test_sign_prints_the_header_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sign", str(EXAMPLE), "--secret", SEED_SECRET]) == 0
    assert capsys.readouterr().out == SEED_SIGNATURE + "\n"


def test_sign_reads_stdin_and_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSIG_SECRET", SEED_SECRET)
    assert run(["sign", "--algorithm", "sha256"], EXAMPLE.read_bytes()) == 0
    assert capsys.readouterr().out.startswith("sha256=d538f848")


def test_verify_match_exits_0_and_lists_events(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["verify", str(EXAMPLE), "--signature", SEED_SIGNATURE, "--parse"]
    assert run([*argv, "--secret", "old", "--secret", SEED_SECRET]) == 0
    out = capsys.readouterr().out
    assert "signature OK: sha1, key #1 of 2" in out
    assert "FINISHED 8e09e19f-b8ba-4db0-b6e7-dfc8a7776176 chat InboundNew" in out


def test_verify_mismatch_exits_1_with_one_line_reason(capsys: pytest.CaptureFixture[str]) -> None:
    tampered = EXAMPLE.read_bytes() + b"\n"
    assert run(["verify", "--signature", SEED_SIGNATURE, "--secret", SEED_SECRET], tampered) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "signature_mismatch" in out
    assert SEED_SECRET not in out


def test_verify_refuses_a_disallowed_algorithm(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["verify", str(EXAMPLE), "--signature", SEED_SIGNATURE, "--secret", SEED_SECRET]
    assert run([*argv, "--algorithm", "sha256"]) == 1
    assert "disallowed_algorithm" in capsys.readouterr().out


def test_secret_file_holds_one_secret_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = tmp_path / "secrets"
    secret_file.write_text(f"old\n{SEED_SECRET}\n", encoding="utf-8")
    argv = [
        "verify",
        str(EXAMPLE),
        "--signature",
        SEED_SIGNATURE,
        "--secret-file",
        str(secret_file),
    ]
    assert run(argv) == 0
    assert "key #1 of 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", str(EXAMPLE), "--signature", SEED_SIGNATURE],
        ["sign", "/nonexistent/body.json", "--secret", "s"],
        ["sign", str(EXAMPLE), "--secret", ""],
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSIG_SECRET", raising=False)
    assert run(argv) == 2
    assert capsys.readouterr().err.startswith("hubsig: ")


def test_argparse_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as raised:
        run(["verify", str(EXAMPLE)])
    assert raised.value.code == 2


@pytest.mark.slow
def test_console_script_runs_the_readme_main_job() -> None:
    """The README's first command, as a user runs it: the installed ``hubsig`` script."""
    script = Path(sys.executable).with_name("hubsig")
    completed = subprocess.run(
        [str(script), "verify", str(EXAMPLE), "--signature", SEED_SIGNATURE, "--parse"],
        env={**os.environ, "HUBSIG_SECRET": SEED_SECRET},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "signature OK" in completed.stdout


def test_verify_explain_names_the_likely_cause(capsys: pytest.CaptureFixture[str]) -> None:
    body = EXAMPLE.read_bytes() + b"\n"
    argv = ["verify", "--signature", SEED_SIGNATURE, "--secret", SEED_SECRET, "--explain"]
    assert run(argv, body) == 1
    out = capsys.readouterr().out
    assert "trailing newline" in out
    assert SEED_SIGNATURE[5:] not in out.replace(SEED_SIGNATURE, "")
    assert SEED_SECRET not in out


def test_sign_explain_describes_the_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sign", "--secret", "s", "--explain"], b'{"a": 1}\r\n') == 0
    err = capsys.readouterr().err
    assert "the body is 10 bytes" in err
    assert "ends with a newline" in err
    assert "carriage returns" in err


def test_help_documents_every_subcommand() -> None:
    from hubsig.cli import parser

    text = parser().format_help()
    for command in ("sign", "verify", "send", "serve", "demo"):
        assert command in text


@pytest.mark.parametrize(
    ("scheme", "prefix", "digest_length"),
    [
        ("genesys-multicloud", "sha1=", 40),
        ("github", "sha256=", 64),
        ("genesys-cloud", "sha256=", 44),  # 32 bytes in base64
        ("websub", "sha1=", 40),
    ],
)
def test_sign_and_verify_take_a_scheme(
    capsys: pytest.CaptureFixture[str], scheme: str, prefix: str, digest_length: int
) -> None:
    assert run(["sign", str(EXAMPLE), "--secret", SEED_SECRET, "--scheme", scheme]) == 0
    header = capsys.readouterr().out.strip()
    assert header.startswith(prefix)
    assert len(header) == len(prefix) + digest_length
    verify = ["verify", str(EXAMPLE), "--secret", SEED_SECRET, "--signature", header]
    assert run([*verify, "--scheme", scheme]) == 0
    assert "signature OK" in capsys.readouterr().out


def test_verify_with_genesys_multicloud_refuses_sha256(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sign", str(EXAMPLE), "--secret", SEED_SECRET, "--algorithm", "sha256"]) == 0
    header = capsys.readouterr().out.strip()
    verify = ["verify", str(EXAMPLE), "--secret", SEED_SECRET, "--signature", header]
    assert run([*verify, "--scheme", "genesys-multicloud"]) == 1
    assert "disallowed_algorithm" in capsys.readouterr().out
