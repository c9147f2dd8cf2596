"""``hubsig serve --otel`` and ``--metrics-port``: OpenTelemetry's SDK and exporters, wired up.

Needs ``opentelemetry-sdk`` beside ``hubsig[otel]``; ``--otel otlp`` also needs
``opentelemetry-exporter-otlp-proto-http`` (configured by the standard
``OTEL_EXPORTER_OTLP_*`` variables), and ``--metrics-port`` needs
``opentelemetry-exporter-prometheus``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubsig.errors import UsageError

__all__ = ["start_telemetry"]


def _need(module: str, package: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise UsageError(f"this option needs {package}: pip install {package}") from None


def start_telemetry(
    exporter: str | None, metrics_port: int | None, host: str
) -> Callable[[], None]:
    """Instrument hubsig with the SDK; returns what flushes and stops it at shut-down."""
    if exporter is None and metrics_port is None:
        return lambda: None
    _need("opentelemetry.sdk", "opentelemetry-sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import hubsig.otel

    resource = Resource.create({"service.name": "hubsig-serve"})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    if exporter == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    elif exporter == "otlp":
        _need("opentelemetry.exporter.otlp.proto.http", "opentelemetry-exporter-otlp-proto-http")
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if metrics_port is not None:
        _need("opentelemetry.exporter.prometheus", "opentelemetry-exporter-prometheus")
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, addr=host)
        except OSError as error:
            raise UsageError(f"cannot serve metrics on {host}:{metrics_port}: {error}") from None
        readers.append(PrometheusMetricReader())
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    hubsig.otel.instrument(tracer_provider, meter_provider)
    providers: list[Any] = [tracer_provider, meter_provider]

    def stop() -> None:
        hubsig.otel.uninstrument()
        for provider in providers:
            provider.shutdown()

    return stop
