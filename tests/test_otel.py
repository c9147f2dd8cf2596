"""OpenTelemetry: spans in the sender's trace and metrics, through every adapter.

Recorded with the SDK's in-memory span exporter and metric reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import hubsig
import hubsig.otel
from hubsig import WebhookConfig
from hubsig.fastapi import VerifiedDelivery
from hubsig.stores import MemoryStore
from hubsig.testing import make_events, signed_request
from tests.adapters import ADAPTERS, Adapter
from tests.harness import Sent

SECRET = "otel-secret"
GENESYS_TRACE = "463ac35c9f6413ad48485a3953bb6124"


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer_provider = provider
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.name == name]

    def delivery(self) -> ReadableSpan:
        (span,) = self.named("hubsig.delivery")
        return span

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        found.extend(item.data.data_points)
        return found

    def count(self, metric: str, **attributes: str) -> int:
        return sum(
            point.value
            for point in self.points(metric)
            if all(point.attributes.get(k) == v for k, v in attributes.items())
        )


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    record = Recorded()
    hubsig.otel.instrument(record.tracer_provider, record.meter_provider)
    try:
        yield record
    finally:
        hubsig.otel.uninstrument()


def _sent(headers: dict[str, str] | None = None, events: int = 2, secret: str = SECRET) -> Sent:
    request = signed_request(make_events(events), secret)
    sent_headers = {
        k: v for k, v in request.headers.items() if k.lower() not in ("x-b3-traceid", "b3")
    }
    return Sent([request.body], {**sent_headers, **(headers or {})})


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_trace_id_sent_alone_becomes_the_trace_of_the_delivery_span(
    adapter: str, recorded: Recorded
) -> None:
    run: Adapter = ADAPTERS[adapter]
    answer = run(WebhookConfig(secret=SECRET), _sent({"X-B3-TraceId": GENESYS_TRACE}))
    assert answer.status == 200
    span = recorded.delivery()
    assert format(span.context.trace_id, "032x") == GENESYS_TRACE
    assert span.parent is not None
    assert span.parent.is_remote
    assert {k.lower(): v for k, v in answer.headers.items()}["x-b3-traceid"] == GENESYS_TRACE
    attributes = span.attributes or {}
    assert attributes["hubsig.verdict"] == "accepted"
    assert attributes["hubsig.events"] == 2
    assert attributes["hubsig.key_index"] == 0
    assert attributes["http.request.method"] == "POST"
    children = {s.name for s in recorded.spans.get_finished_spans() if s.parent == span.context}
    assert {"hubsig.read_body", "hubsig.verify", "hubsig.parse", "hubsig.handler"} <= children
    assert recorded.count("hubsig.deliveries", **{"hubsig.verdict": "accepted"}) == 1
    assert recorded.count("hubsig.events", **{"hubsig.outcome": "processed"}) == 2


def test_a_single_b3_header_with_a_span_id_makes_the_delivery_its_child(
    recorded: Recorded,
) -> None:
    span_id = "e457b5a2e4d86bd1"
    answer = ADAPTERS["asgi"](
        WebhookConfig(secret=SECRET), _sent({"b3": f"{GENESYS_TRACE}-{span_id}-1"})
    )
    assert answer.status == 200
    span = recorded.delivery()
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == span_id
    assert format(span.context.trace_id, "032x") == GENESYS_TRACE


def test_the_trace_id_in_log_lines_spans_and_the_answer_is_one(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def handler(payload: hubsig.EventsPayload) -> None:
        trace = hubsig.current_trace()
        assert trace is not None
        seen.append(trace.trace_id)
        from opentelemetry import trace as otel

        seen.append(format(otel.get_current_span().get_span_context().trace_id, "032x"))

    endpoint = hubsig.webhook(secret=SECRET)(handler)
    from tests.harness import call_wsgi

    status, _, _ = call_wsgi(endpoint.wsgi, _sent({"X-B3-TraceId": GENESYS_TRACE}))
    assert status == 200
    assert seen == [GENESYS_TRACE, GENESYS_TRACE]
    assert format(recorded.delivery().context.trace_id, "032x") == GENESYS_TRACE


def test_refused_duplicate_busy_and_failing_deliveries_have_their_verdicts(
    recorded: Recorded,
) -> None:
    store = MemoryStore()
    config = WebhookConfig(secret=SECRET, store=store)
    good = _sent()
    assert ADAPTERS["asgi"](config, good).status == 200
    assert ADAPTERS["asgi"](config, good).status == 200  # the duplicate
    forged = _sent(secret="not-the-secret")
    assert ADAPTERS["asgi"](config, forged).status == 401
    failing = _sent({"x-test-fail": "1"})
    assert ADAPTERS["webhook-asgi"](WebhookConfig(secret=SECRET), failing).status == 500
    verdicts = [
        (span.attributes or {}).get("hubsig.verdict") for span in recorded.named("hubsig.delivery")
    ]
    assert verdicts == ["accepted", "duplicate", "refused", "failed"]
    refused = recorded.named("hubsig.delivery")[2]
    assert (refused.attributes or {})["hubsig.reason"] == "signature_mismatch"
    assert (refused.attributes or {})["http.response.status_code"] == 401
    assert recorded.count("hubsig.deliveries", **{"hubsig.verdict": "refused"}) == 1
    assert recorded.count("hubsig.events", **{"hubsig.outcome": "duplicate"}) == 2
    assert recorded.count("hubsig.deliveries", **{"hubsig.verdict": "failed"}) == 1


def test_a_busy_delivery_is_counted_busy(recorded: Recorded) -> None:
    store = MemoryStore()
    sent = _sent()
    payload = hubsig.parse_events(sent.body)
    from hubsig._dedupe import event_keys, unique_keys

    store.claim(unique_keys(event_keys(payload, sent.body)), 60, "another worker")
    assert ADAPTERS["wsgi"](WebhookConfig(secret=SECRET, store=store), sent).status == 409
    assert (recorded.delivery().attributes or {})["hubsig.verdict"] == "busy"
    assert recorded.count("hubsig.events", **{"hubsig.outcome": "busy"}) == 2


def test_metrics_have_units_and_measure_each_delivery(recorded: Recorded) -> None:
    for _ in range(3):
        assert ADAPTERS["webhook-wsgi"](WebhookConfig(secret=SECRET), _sent()).status == 200
    data = recorded.reader.get_metrics_data()
    assert data is not None
    units = {
        item.name: item.unit
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for item in scope.metrics
    }
    assert units["hubsig.request.body.size"] == "By"
    assert units["hubsig.verification.duration"] == "s"
    assert units["hubsig.handler.duration"] == "s"
    (sizes,) = recorded.points("hubsig.request.body.size")
    assert sizes.count == 3
    (active,) = recorded.points("hubsig.deliveries.active")
    assert active.value == 0  # every delivery ended


def test_a_sampled_0_from_the_sender_is_kept(recorded: Recorded) -> None:
    assert (
        ADAPTERS["asgi"](WebhookConfig(secret=SECRET), _sent({"X-B3-Sampled": "0"})).status == 200
    )
    assert recorded.named("hubsig.delivery") == []  # the parent-based sampler follows the sender


def test_the_natives_are_recorded_too(recorded: Recorded) -> None:
    from flask import Flask

    from hubsig.flask import webhook_view

    app = Flask(__name__)

    @app.post("/hook")
    @webhook_view(secret=SECRET)
    def hook() -> dict[str, object]:
        return {"ok": True}

    sent = _sent({"X-B3-TraceId": GENESYS_TRACE})
    assert app.test_client().post("/hook", data=sent.body, headers=sent.headers).status_code == 200
    assert format(recorded.delivery().context.trace_id, "032x") == GENESYS_TRACE


def test_without_instrument_nothing_is_recorded() -> None:
    record = Recorded()
    hubsig.otel.instrument(record.tracer_provider, record.meter_provider)
    hubsig.otel.uninstrument()
    assert ADAPTERS["asgi"](WebhookConfig(secret=SECRET), _sent()).status == 200
    assert record.spans.get_finished_spans() == ()
    assert record.points("hubsig.deliveries") == []


# --- hubsig serve --otel and --metrics-port ------------------------------------------------


@pytest.mark.slow
def test_serve_exports_spans_to_the_console_and_metrics_to_prometheus(tmp_path: Any) -> None:
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    from tests.test_send_serve import environment, hubsig_command, send

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    printed = tmp_path / "stdout.txt"
    command = hubsig_command(
        "serve", "--port", "0", "--out", str(tmp_path / "events.jsonl"),
        "--store", str(tmp_path / "events.db"), "--otel", "console", "--metrics-port", str(port),
    )  # fmt: skip
    with printed.open("w") as stdout:
        server = subprocess.Popen(
            command, stdout=stdout, stderr=subprocess.DEVNULL, env=environment(SECRET), text=True
        )
    try:
        deadline = time.monotonic() + 30
        while "listening on " not in printed.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = printed.read_text().split("listening on ", 1)[1].split()[0]
        body = tmp_path / "body.json"
        body.write_bytes(make_events(2).to_json())
        sent = send(url, "--body", str(body), "--trace-id", GENESYS_TRACE, secret=SECRET)
        assert sent.returncode == 0, sent.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            exposition = answer.read().decode()
        assert 'hubsig_deliveries_total{hubsig_verdict="accepted"' in exposition
        assert "hubsig_request_body_size_bytes_count" in exposition
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    spans = printed.read_text()
    assert '"name": "hubsig.delivery"' in spans
    assert f"0x{GENESYS_TRACE}" in spans  # the sender's trace id is the span's


# --- the other adapters: Django, aiohttp, the FastAPI dependency -------------------------


def _b3_sent() -> Sent:
    return _sent({"X-B3-TraceId": GENESYS_TRACE})


def test_the_django_view_is_recorded(recorded: Recorded) -> None:
    from django.http import HttpRequest, JsonResponse
    from django.test import Client, override_settings
    from django.urls import clear_url_caches, path

    from hubsig.django import webhook_view
    from tests import django_site

    django_site.configure()
    with override_settings(HUBSIG={"secret": SECRET}):

        @webhook_view()
        def hook(request: HttpRequest) -> JsonResponse:
            return JsonResponse({"ok": True})

    django_site.urlpatterns[:] = [path("hook", hook)]
    clear_url_caches()
    sent = _b3_sent()
    answer = Client().post(
        "/hook", sent.body, content_type="application/json", headers=sent.headers
    )
    assert answer.status_code == 200
    assert format(recorded.delivery().context.trace_id, "032x") == GENESYS_TRACE


def test_the_aiohttp_handler_is_recorded(recorded: Recorded) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from hubsig.aiohttp import webhook_handler

    @webhook_handler(secret=SECRET)
    async def hook(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    sent = _b3_sent()

    async def scenario() -> int:
        async with TestClient(TestServer(app)) as client:
            return (await client.post("/hook", data=sent.body, headers=sent.headers)).status

    assert asyncio.run(scenario()) == 200
    assert format(recorded.delivery().context.trace_id, "032x") == GENESYS_TRACE


def test_the_fastapi_dependency_is_recorded(recorded: Recorded) -> None:
    app = FastAPI()

    @app.post("/hook")
    async def hook(
        delivery: Annotated[hubsig.Delivery, Depends(VerifiedDelivery(secret=SECRET))],
    ) -> dict[str, int]:
        return {"events": len(delivery.payload.events)}

    sent = _b3_sent()
    answer = TestClient(app).post("/hook", content=sent.body, headers=sent.headers)
    assert answer.status_code == 200
    assert format(recorded.delivery().context.trace_id, "032x") == GENESYS_TRACE


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_exception_the_adapter_answers_is_recorded_on_the_handler_span(
    adapter: str, recorded: Recorded
) -> None:
    answer = ADAPTERS[adapter](WebhookConfig(secret=SECRET), _sent({"x-test-fail": "1"}))
    assert answer.status == 500
    (handler,) = recorded.named("hubsig.handler")
    assert [event.name for event in handler.events] == ["exception"]
    assert str((handler.events[0].attributes or {})["exception.type"]).endswith("AppFailure")
    assert (recorded.delivery().attributes or {})["hubsig.verdict"] == "failed"


# --- what a review found (each failed before its fix) -------------------------------------


def test_store_calls_and_outgoing_b3_headers_are_under_hubsigs_spans(recorded: Recorded) -> None:
    from opentelemetry import trace as otel

    tracer = recorded.tracer_provider.get_tracer("a store client")
    outgoing: list[dict[str, str]] = []

    class TracedStore(MemoryStore):
        def claim(self, keys: Any, lease: float, token: str) -> Any:
            with tracer.start_as_current_span("db.claim"):
                return super().claim(keys, lease, token)

    def handler(payload: hubsig.EventsPayload) -> None:
        current = hubsig.current_trace()
        assert current is not None
        outgoing.append(current.to_headers())

    endpoint = hubsig.webhook(secret=SECRET, store=TracedStore())(handler)
    from tests.harness import call_wsgi

    assert call_wsgi(endpoint.wsgi, _sent({"X-B3-TraceId": GENESYS_TRACE}))[0] == 200
    (claim,) = recorded.named("hubsig.store.claim")
    (client,) = recorded.named("db.claim")
    assert client.parent is not None
    assert client.parent.span_id == claim.context.span_id
    (handler_span,) = recorded.named("hubsig.handler")
    assert outgoing[0]["X-B3-ParentSpanId"] == format(handler_span.context.span_id, "016x")
    assert outgoing[0]["X-B3-TraceId"] == GENESYS_TRACE
    assert otel.get_current_span() is otel.INVALID_SPAN  # nothing leaks after the request


def test_the_apps_own_status_a_refused_signature_and_a_disconnect_are_recorded(
    recorded: Recorded,
) -> None:
    from hubsig.asgi import HubSignatureMiddleware
    from tests.harness import call_asgi

    async def unavailable(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = HubSignatureMiddleware(unavailable, secret=SECRET)
    assert asyncio.run(call_asgi(app, _sent()))[0] == 503
    forged = _sent(secret="wrong")
    assert asyncio.run(call_asgi(app, forged))[0] == 401
    cut = _sent()
    cut.chunks = [cut.body[:10], cut.body[10:]]
    cut.disconnect_after = 1
    asyncio.run(call_asgi(app, cut))
    answered, refused, gone = recorded.named("hubsig.delivery")
    assert (answered.attributes or {})["http.response.status_code"] == 503
    assert (answered.attributes or {})["hubsig.verdict"] == "failed"
    (verify_refused,) = [s for s in recorded.named("hubsig.verify") if s.parent == refused.context]
    assert verify_refused.status.status_code.name == "ERROR"
    (durations,) = recorded.points("hubsig.verification.duration")
    assert durations.count == 2  # the refused signature is timed too
    assert (gone.attributes or {})["hubsig.verdict"] == "disconnected"
    assert gone.status.status_code.name == "UNSET"


def test_a_bad_metrics_port_is_a_usage_error(tmp_path: Any) -> None:
    from tests.test_send_serve import run_hubsig

    done = run_hubsig("serve", "--port", "0", "--metrics-port", "-1", secret=SECRET, cwd=tmp_path)
    assert done.returncode == 2
    assert "--metrics-port must be a port number" in done.stderr


def test_start_telemetry_wires_the_sdk_and_stops_cleanly() -> None:
    """``serve --otel console --metrics-port`` in process (the spans printed are checked with
    a real ``hubsig serve`` above): metrics served,
    a port already taken refused as a usage error, and everything stopped at the end."""
    import socket
    import urllib.request

    from hubsig.cli.telemetry import start_telemetry
    from hubsig.errors import UsageError
    from tests.harness import call_wsgi

    assert start_telemetry(None, None, "127.0.0.1")() is None  # nothing asked, nothing done
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(UsageError, match="cannot serve metrics"):
            start_telemetry(None, taken.getsockname()[1], "127.0.0.1")
        hubsig.otel.uninstrument()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = start_telemetry("console", port, "127.0.0.1")
    try:
        endpoint = hubsig.webhook(secret=SECRET)(lambda payload: None)
        assert call_wsgi(endpoint.wsgi, _sent({"X-B3-TraceId": GENESYS_TRACE}))[0] == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            assert "hubsig_deliveries_total" in answer.read().decode()
    finally:
        stop()
    from hubsig import _telemetry

    assert _telemetry.observer is None


def test_serve_with_an_in_memory_store_appends_its_sink_directly(tmp_path: Any) -> None:
    from hubsig.cli.serving import Sink
    from hubsig.stores import SQLiteStore
    from tests.harness import call_wsgi

    sink = Sink(SQLiteStore(":memory:"), str(tmp_path / "events.jsonl"))
    endpoint = hubsig.webhook(secret=SECRET)(lambda payload, delivery: sink.write(delivery))
    assert call_wsgi(endpoint.wsgi, _sent(events=3))[0] == 200
    asyncio.run(sink.flush())  # nothing to export: the lines are already in the file
    sink.close()
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 3
