"""``hubsig serve`` and ``hubsig send`` against each other: real processes, HTTP on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import hubsig
from hubsig.asgi import HubSignatureMiddleware
from hubsig.cli.event_log import read_event_log
from hubsig.testing import make_events

SECRET = "serve-secret"
OLD_SECRET = "serve-secret-last-year"


def hubsig_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "hubsig", *arguments]


def run_hubsig(
    *arguments: str, secret: str = SECRET, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``hubsig ARGUMENTS`` to its end, its output captured (for usage-error tests)."""
    return subprocess.run(
        hubsig_command(*arguments),
        capture_output=True,
        text=True,
        env=environment(secret),
        timeout=60,
        check=False,
        cwd=cwd,
    )


def environment(secret: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "HUBSIG_SECRET"}
    if secret is not None:
        env["HUBSIG_SECRET"] = secret
    return env


@contextmanager
def serving(
    tmp_path: Path, *arguments: str, secret: str | None = SECRET
) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    out = tmp_path / "events.jsonl"
    log = (tmp_path / "serve.log").open("w")
    store = tmp_path / "events.db"
    command = hubsig_command(
        "serve", "--port", "0", "--out", str(out), "--store", str(store), *arguments
    )
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, text=True, env=environment(secret)
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("hubsig: listening on "), (tmp_path / "serve.log").read_text()
        yield line.split("listening on ", 1)[1].strip(), out, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def send(
    url: str, *arguments: str, secret: str = SECRET, report: Path | None = None
) -> subprocess.CompletedProcess[str]:
    extra = ["--report", str(report)] if report else []
    return subprocess.run(
        hubsig_command("send", url, *arguments, *extra),
        capture_output=True,
        text=True,
        env=environment(secret),
        timeout=120,
        check=False,
    )


def read_report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_rotation_old_secret_still_accepted(tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets"
    secrets_file.write_text(f"{SECRET}\n{OLD_SECRET}\n", encoding="utf-8")
    report = tmp_path / "report.jsonl"
    with serving(tmp_path, "--secret-file", str(secrets_file), secret=None) as (url, out, _):
        sent = send(url, "--count", "3", secret=OLD_SECRET, report=report)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.count(" 200 accepted ") == 3
        assert "sent 3, accepted 3, refused 0, errors 0" in sent.stdout
    records = read_event_log(out)
    sent_ids = [entity_id for row in read_report(report) for entity_id in row["sent_ids"]]
    assert [record["entity"]["id"] for record in records] == sent_ids
    assert {record["keyIndex"] for record in records} == {1}


@pytest.mark.slow
def test_tampered_deliveries_are_refused_and_not_stored(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, out, _):
        tampered = send(url, "--count", "2", "--tamper")
        assert tampered.returncode == 0, tampered.stdout  # refusal was the expected outcome
        assert tampered.stdout.count(" 401 refused ") == 2
        wrong = send(url, secret="not-the-secret")
        assert wrong.returncode == 1
        assert "unexpected" in wrong.stdout
    assert read_event_log(out) == []


@pytest.mark.slow
def test_every_event_is_one_line_with_its_trace(tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    with serving(tmp_path) as (url, out, _):
        arguments = [
            "--count",
            "2",
            "--events",
            "3",
            "--event-type",
            "FINISHED",
            "--media-type",
            "email",
        ]
        sent = send(url, *arguments, "--interaction-subtype", "SMS", report=report)
        assert sent.returncode == 0, sent.stdout
    records = read_event_log(out)
    rows = read_report(report)
    assert len(records) == 6
    for row in rows:
        mine = [record for record in records if record["traceId"] == row["trace_id"]]
        assert [record["entity"]["id"] for record in mine] == row["sent_ids"] == row["ids"]
    for record in records:
        assert record["event"] == "FINISHED"
        assert record["entity"]["mediaType"] == "email"
        assert record["entity"]["interactionSubtype"] == "SMS"
        assert record["entity"]["selfUri"].endswith(record["entity"]["id"])
    log = (tmp_path / "serve.log").read_text()
    for row in rows:
        assert log.count(f"trace={row['trace_id']}") == 3  # one line per event


@pytest.mark.slow
def test_graceful_shutdown_loses_no_accepted_event(tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    with serving(tmp_path) as (url, out, server):
        sender = subprocess.Popen(
            hubsig_command(
                "send", url, "--count", "600", "--concurrency", "16", "--report", str(report)
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment(SECRET),
        )
        deadline = time.monotonic() + 60
        while (not out.exists() or out.stat().st_size < 20_000) and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGTERM)  # mid-run
        server.wait(timeout=30)
        sender.wait(timeout=120)
    rows = read_report(report)
    accepted = [entity_id for row in rows if row["accepted"] for entity_id in row["sent_ids"]]
    recorded = [record["entity"]["id"] for record in read_event_log(out)]
    assert 0 < len(accepted) < 600, "the shutdown should land mid-run"
    assert set(accepted) <= set(recorded)  # every 200 is in the file
    assert len(recorded) == len(set(recorded))  # and nothing twice


@pytest.mark.slow
def test_demo_runs_the_whole_loop() -> None:
    completed = subprocess.run(
        hubsig_command("demo"), capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "demo OK" in completed.stdout
    assert "tampered signature    refuse    401 code 401  refused" in completed.stdout


@pytest.mark.slow
def test_a_restarted_receiver_does_not_store_an_event_twice(tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_bytes(
        b'{"operationId":"op-r","data":{"entities":[{"event":"STARTED","entity":{"id":"r-1"}}]}}'
    )
    for _ in range(2):  # the same store and sink across a restart
        with serving(tmp_path) as (url, out, _):
            sent = send(url, "--body", str(payload), "--count", "2")
            assert sent.returncode == 0, sent.stdout
    assert [record["entity"]["id"] for record in read_event_log(out)] == ["r-1"]


@pytest.mark.slow
def test_load_with_duplicates_and_tampering_loses_and_doubles_nothing() -> None:
    """A small run of benchmarks/stress.py (the 20,000-delivery run: docs/reliability.md)."""
    from benchmarks.stress import run

    figures = run(count=1000, concurrency=32)
    assert figures["duplicates_sent"] > 0
    assert figures["tampered_sent"] > 0
    assert figures["lost_events"] == 0
    assert figures["events_recorded_twice"] == 0
    assert figures["good_events_never_accepted"] == 0
    assert figures["tampered_accepted"] == 0
    assert figures["tampered_events_recorded"] == 0
    assert figures["responses_5xx"] == 0
    assert figures["errors"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scheme", "other"), [("genesys-cloud", "github"), ("github", "genesys-multicloud")]
)
def test_scheme_is_one_setting_on_both_sides(tmp_path: Path, scheme: str, other: str) -> None:
    with serving(tmp_path, "--scheme", scheme) as (url, out, _):
        assert send(url, "--scheme", scheme, "--count", "2").returncode == 0
        refused = send(url, "--scheme", other)
        assert refused.returncode == 1
        assert "refused" in refused.stdout
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2


@pytest.mark.slow
def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, _, server):
        assert send(url).returncode == 0
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "stopped; accepted events are in" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_send_carries_an_api_key_extra_headers_and_a_trace_id() -> None:
    from tests.servers import uvicorn_server

    seen: list[dict[str, str]] = []

    async def app(scope: Any, receive: Any, send_message: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send_message({"type": "lifespan.startup.complete"})
            await send_message({"type": "lifespan.shutdown.complete"})
            return
        delivery = hubsig.delivery_of(scope)
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        body = hubsig.events_response(delivery.payload.entity_ids).to_json()
        await send_message({"type": "http.response.start", "status": 200, "headers": []})
        await send_message({"type": "http.response.body", "body": body})

    guarded = HubSignatureMiddleware(app, secret=SECRET, api_keys=["ключ-2026"])
    trace = "463ac35c9f6413ad48485a3953bb6124"
    with uvicorn_server(guarded) as base:
        url = base + "/webhooks/interactions"
        options = ["--header", "X-Channel: chat", "--trace-id", trace, "--count", "2"]
        sent = send(url, "--api-key", "ключ-2026", *options)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        refused = send(url, "--api-key", "wrong", *options)
        assert refused.returncode == 1
        assert "401" in refused.stdout
    assert len(seen) == 2
    assert {h["x-channel"] for h in seen} == {"chat"}
    assert {h["x-b3-traceid"] for h in seen} == {trace}


def test_send_reports_409_as_retry_later_not_as_a_wrong_answer() -> None:
    from hubsig.cli.sending import Outcome, Planned, describe, summary

    planned = Planned(1, b"{}", {}, "t", should_accept=True)
    busy = Outcome(planned, 409, 0.01, code=409)
    assert busy.retry_later
    assert busy.as_expected
    assert " later " in describe(busy)
    assert "asked to retry later 1, other answers 0, unexpected 0" in summary([busy])
    tampered_busy = Outcome(replace(planned, should_accept=False), 409, 0.01, code=409)
    assert not tampered_busy.as_expected


@pytest.mark.slow
def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """``hubsig verify --parse big.json | head -1``: exit 141, no traceback."""
    body = make_events(20_000).to_json()  # far more output than a pipe holds
    path = tmp_path / "big.json"
    path.write_bytes(body)
    command = ["verify", str(path), "--parse", "--signature", hubsig.sign(body, SECRET)]
    process = subprocess.Popen(
        hubsig_command(*command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(SECRET),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline().startswith(b"signature OK")
    process.stdout.close()  # what `| head -1` does
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""
    process.stderr.close()


@pytest.mark.slow
def test_version() -> None:
    done = subprocess.run(
        hubsig_command("--version"), capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.strip() == f"hubsig {hubsig.__version__}"


@pytest.mark.slow
def test_workers_share_the_store_so_each_event_is_written_once(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2") as (url, out, server):
        sent = send(
            url, "--count", "60", "--concurrency", "8", "--duplicates", "0.3",
            "--retries", "5", "--seed", "7", report=tmp_path / "report.jsonl",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    ids = [record["entity"]["id"] for record in read_event_log(out)]
    expected = {i for r in read_report(tmp_path / "report.jsonl") for i in r["sent_ids"]}
    assert sorted(ids) == sorted(expected)  # every event once, none twice


@pytest.mark.slow
def test_workers_refuse_a_store_they_cannot_share(tmp_path: Path) -> None:
    done = run_hubsig("serve", "--workers", "2", "--store", ":memory:", "--port", "0")
    assert done.returncode == 2
    assert "--workers needs a store every worker shares" in done.stderr


def test_a_tampered_delivery_is_refused_only_by_an_events_response_refusal() -> None:
    """``send --tamper`` must not pass on a 404 page, a 500, or an app that ran anyway."""
    from hubsig.cli.sending import Outcome, Planned

    tampered = Planned(1, b"{}", {}, "t", should_accept=False)
    assert Outcome(tampered, 401, 0.01, code=401).as_expected
    assert Outcome(tampered, 200, 0.01, code=401).as_expected  # acknowledge_rejections
    for status, code in ((404, None), (500, 500), (200, None), (200, 0), (500, None)):
        assert not Outcome(tampered, status, 0.01, code=code).as_expected


@pytest.mark.slow
def test_send_refuses_a_trace_id_that_is_no_b3_id() -> None:
    done = run_hubsig("send", "http://127.0.0.1:9/x", "--trace-id", "xyz")
    assert done.returncode == 2
    assert "--trace-id takes 16 or 32 hexadecimal digits" in done.stderr
