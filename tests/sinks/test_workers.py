"""``hubsig.workers.OnceProcessor``: each message's event once with a real store, whatever
the engine redelivers; the rule every engine's worker shares."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from hubsig._dedupe import Claim, DedupePolicy
from hubsig._trace import TraceIdFilter
from hubsig.errors import ConfigurationError
from hubsig.sinks import SinkMessage
from hubsig.stores import MemoryStore, SQLiteStore
from hubsig.workers import ClaimedEvent, OnceProcessor, Verdict

TRACE_ID = "463ac35c9f6413ad48485a3953bb6124"


def _message(key: str = "STARTED:e1") -> SinkMessage:
    return SinkMessage(key, {"event": "STARTED", "entity": {"id": key}}, "op", TRACE_ID)


def _table(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS processed (key TEXT)")


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT count(*) FROM processed").fetchone()[0]
        return count


def _insert(event: ClaimedEvent) -> None:
    event.transaction().execute("INSERT INTO processed VALUES (?)", (event.key,))


def test_a_message_delivered_again_is_processed_once(tmp_path: Path) -> None:
    _table(path := tmp_path / "w.db")
    processor = OnceProcessor(SQLiteStore(path), _insert)
    verdicts = [processor.process(_message()) for _ in range(3)]
    assert verdicts == [Verdict.PROCESSED, Verdict.DUPLICATE, Verdict.DUPLICATE]
    assert [v.acknowledge for v in verdicts] == [True, True, True]
    assert _rows(path) == 1


def test_a_failing_handler_rolls_back_its_writes_and_gives_the_claim_back(
    tmp_path: Path,
) -> None:
    _table(path := tmp_path / "w.db")
    failures = [RuntimeError("the CRM is down")]

    def fails_once(event: ClaimedEvent) -> None:
        _insert(event)
        if failures:
            raise failures.pop()

    processor = OnceProcessor(SQLiteStore(path), fails_once)
    assert processor.process(_message()) is Verdict.FAILED
    assert not Verdict.FAILED.acknowledge
    assert _rows(path) == 0
    assert processor.process(_message()) is Verdict.PROCESSED
    assert _rows(path) == 1


def test_an_event_another_worker_holds_is_busy_and_not_acknowledged(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    assert store.claim(["STARTED:e1"], 60, "another-worker") == [Claim.CLAIMED]
    ran: list[str] = []
    verdict = OnceProcessor(store, lambda event: ran.append(event.key)).process(_message())
    assert verdict is Verdict.BUSY
    assert not verdict.acknowledge
    assert ran == []


def test_a_claim_that_expired_unsettled_is_processed_again_marked_redelivered(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    store.claim(["STARTED:e1"], 0.01, "a-worker-that-was-killed")
    threading.Event().wait(0.02)
    seen: list[bool] = []
    OnceProcessor(store, lambda event: seen.append(event.redelivered)).process(_message())
    assert seen == [True]


def test_a_slow_handler_keeps_its_claim_and_tells_the_engine(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    told: list[bool] = []
    answers: list[Claim] = []

    def slow(event: ClaimedEvent) -> None:
        threading.Event().wait(1.0)  # past the lease: renewed every third of it
        answers.extend(store.claim([event.key], 0.45, "another-worker"))

    processor = OnceProcessor(store, slow, policy=DedupePolicy(lease=0.45))
    assert processor.process(_message(), lambda: told.append(True)) is Verdict.PROCESSED
    assert answers == [Claim.BUSY]
    assert len(told) >= 2


def test_a_transaction_whose_claim_another_worker_took_is_rolled_back(tmp_path: Path) -> None:
    _table(path := tmp_path / "w.db")
    store = SQLiteStore(path)

    def outlasts_its_lease(event: ClaimedEvent) -> None:
        _insert(event)
        # The claim expires (no renewal reached it) and another worker takes the event.
        event.claims.token = "stale"

    processor = OnceProcessor(store, outlasts_its_lease)
    assert processor.process(_message()) is Verdict.BUSY
    assert _rows(path) == 0


def test_the_workers_log_lines_carry_the_senders_trace_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(TraceIdFilter())
    traces: list[str] = []

    def handle(event: ClaimedEvent) -> None:
        logging.getLogger("app").info("handling %s", event.key)

    processor = OnceProcessor(MemoryStore(), handle)
    processor.process(_message())
    processor.process(_message())
    for record in caplog.records:
        traces.append(getattr(record, "trace_id", "-"))
    assert traces
    assert set(traces) == {TRACE_ID}
    assert any("duplicate event acknowledged" in r.getMessage() for r in caplog.records)


def test_an_async_store_or_handler_is_refused_at_start_up(tmp_path: Path) -> None:
    from hubsig.stores.postgres import AsyncPostgresStore

    async def handler(event: ClaimedEvent) -> None:
        return None

    with pytest.raises(ConfigurationError, match="synchronous store"):
        OnceProcessor(AsyncPostgresStore("postgresql://x@127.0.0.1:1/x"), _insert)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="plain function"):
        OnceProcessor(MemoryStore(), handler)


def test_a_store_that_lends_no_transaction_says_so(tmp_path: Path) -> None:
    errors: list[str] = []

    def handle(event: ClaimedEvent) -> None:
        try:
            event.transaction()
        except ConfigurationError as error:
            errors.append(str(error))

    OnceProcessor(MemoryStore(), handle).process(_message())
    assert errors
    assert "MemoryStore lends no transaction" in errors[0]


def test_postgres_completes_in_the_workers_own_transaction(postgres_url: str) -> None:
    import psycopg

    from hubsig.stores.postgres import PostgresStore
    from tests.conftest import fresh_table

    table = fresh_table()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE TABLE {table}_rows (key TEXT)")
    store = PostgresStore(postgres_url, table=table)

    def handle(event: ClaimedEvent) -> None:
        event.transaction().execute(f"INSERT INTO {table}_rows VALUES (%s)", (event.key,))
        if event.key.endswith("fail"):
            raise RuntimeError("rolled back with its completion")

    processor = OnceProcessor(store, handle)
    assert [processor.process(_message()) for _ in range(2)] == [
        Verdict.PROCESSED,
        Verdict.DUPLICATE,
    ]
    assert processor.process(_message("STARTED:fail")) is Verdict.FAILED
    with psycopg.connect(postgres_url) as db:
        rows = db.execute(f"SELECT key FROM {table}_rows").fetchall()
    assert rows == [("STARTED:e1",)]
    store.close()


def test_with_telemetry_each_event_is_a_span_in_the_senders_trace() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from hubsig import otel

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))

    def handle(event: ClaimedEvent) -> None:
        with provider.get_tracer("app").start_as_current_span("crm.update"):
            pass

    otel.instrument(tracer_provider=provider)
    try:
        processor = OnceProcessor(MemoryStore(), handle)
        processor.process(_message())
        processor.process(_message())
    finally:
        otel.uninstrument()
    finished = spans.get_finished_spans()
    events = [span for span in finished if span.name == "hubsig.worker.event"]
    (crm,) = [span for span in finished if span.name == "crm.update"]
    verdicts = [(span.attributes or {}).get("hubsig.verdict") for span in events]
    assert verdicts == ["processed", "duplicate"]
    assert {span.context.trace_id for span in finished} == {int(TRACE_ID, 16)}
    assert {span.kind for span in events} == {SpanKind.CONSUMER}
    assert crm.parent is not None
    assert crm.parent.span_id == events[0].context.span_id


def test_a_message_whose_trace_id_is_no_b3_id_gets_a_fresh_trace() -> None:
    seen: list[str] = []
    message = SinkMessage("STARTED:e1", {}, None, "not-hex\nforged")
    OnceProcessor(MemoryStore(), lambda event: seen.append(current_trace_id())).process(message)
    assert len(seen) == 1
    assert seen[0] != message.trace_id
    assert len(seen[0]) == 32


def current_trace_id() -> str:
    from hubsig import current_trace

    trace = current_trace()
    assert trace is not None
    return trace.trace_id
