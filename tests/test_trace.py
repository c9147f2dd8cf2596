"""B3 trace context: the spec cases, the Genesys leniency, the context variable, the log filter."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig import TraceContext, TraceIdFilter, current_trace, use_trace
from tests.known_answers import load_vectors

B3_CASES = load_vectors("b3.json")


def _valid_id(value: str, lengths: tuple[int, ...]) -> bool:
    return len(value) in lengths and set(value) <= set("0123456789abcdef") and set(value) != {"0"}


def _case_id(case: dict[str, Any]) -> str:
    return str(case.get("note") or sorted(case["headers"].items()))


@pytest.mark.parametrize("case", B3_CASES, ids=_case_id)
def test_spec_cases(case: dict[str, Any]) -> None:
    trace = TraceContext.from_headers(case["headers"])
    assert _valid_id(trace.trace_id, (16, 32))
    assert _valid_id(trace.span_id, (16,))
    if case["trace_id"] is None:
        assert trace.generated
        assert trace.trace_id not in {v.lower() for v in case["headers"].values()}
    else:
        assert trace.trace_id == case["trace_id"]
        assert not trace.generated
    if "sampled" in case:
        assert trace.sampled is case["sampled"]
    if "debug" in case:
        assert trace.debug is case["debug"]


def test_genesys_trace_id_alone_is_kept_with_a_fresh_span() -> None:
    trace = TraceContext.from_headers({"X-B3-TraceId": "463ac35c9f6413ad48485a3953bb6124"})
    assert trace.trace_id == "463ac35c9f6413ad48485a3953bb6124"
    assert trace.parent_span_id is None
    assert trace.sampled is None
    assert not trace.generated
    assert trace.discarded is None


def test_invalid_trace_is_replaced_and_that_is_observable() -> None:
    trace = TraceContext.from_headers({"X-B3-TraceId": "not-a-trace-id"})
    assert trace.generated
    assert trace.discarded is not None
    assert "not-a-trace-id" not in trace.discarded
    absent = TraceContext.from_headers({})
    assert absent.generated
    assert absent.discarded is None


def test_invalid_single_header_falls_back_to_multi_headers() -> None:
    headers = {"b3": "garbage", "X-B3-TraceId": "a2fb4a1d1a96d312"}
    assert TraceContext.from_headers(headers).trace_id == "a2fb4a1d1a96d312"


def test_byte_pairs_as_asgi_gives_them() -> None:
    trace = TraceContext.from_headers([(b"x-b3-traceid", b"463AC35C9F6413AD48485A3953BB6124")])
    assert trace.trace_id == "463ac35c9f6413ad48485a3953bb6124"


def test_to_headers_forwards_the_trace_as_a_child_span() -> None:
    trace = TraceContext.from_headers(
        {
            "X-B3-TraceId": "80f198ee56343ba864fe8b2a57d3eff7",
            "X-B3-SpanId": "e457b5a2e4d86bd1",
            "X-B3-Sampled": "1",
        }
    )
    headers = trace.to_headers()
    assert headers["X-B3-TraceId"] == trace.trace_id
    assert headers["X-B3-ParentSpanId"] == "e457b5a2e4d86bd1"
    assert headers["X-B3-SpanId"] != "e457b5a2e4d86bd1"
    assert headers["X-B3-Sampled"] == "1"
    forwarded = TraceContext.from_headers(headers)
    assert (forwarded.trace_id, forwarded.sampled) == (trace.trace_id, True)


header_names = st.sampled_from(
    ["b3", "X-B3-TraceId", "X-B3-SpanId", "X-B3-ParentSpanId", "X-B3-Sampled", "X-B3-Flags"]
)
hexish = st.text(alphabet="0123456789abcdefABCDEF-xg ", max_size=70)


@given(st.dictionaries(header_names, st.one_of(st.text(), hexish)))
def test_arbitrary_headers_never_raise_and_always_give_a_valid_trace(
    headers: dict[str, str],
) -> None:
    trace = TraceContext.from_headers(headers)
    assert _valid_id(trace.trace_id, (16, 32))
    assert _valid_id(trace.span_id, (16,))
    assert trace.parent_span_id is None or _valid_id(trace.parent_span_id, (16,))


@given(
    st.sampled_from([16, 32]).flatmap(lambda n: st.text("0123456789abcdef", min_size=n, max_size=n))
)
def test_any_valid_trace_id_is_kept_at_its_length(trace_id: str) -> None:
    trace = TraceContext.from_headers({"X-B3-TraceId": trace_id.upper()})
    if set(trace_id) == {"0"}:
        assert trace.generated
    else:
        assert trace.trace_id == trace_id


def test_current_trace_is_set_and_reset() -> None:
    assert current_trace() is None
    outer, inner = TraceContext.new(), TraceContext.new()
    with use_trace(outer):
        assert current_trace() is outer
        with use_trace(inner):
            assert current_trace() is inner
        assert current_trace() is outer
    assert current_trace() is None


def test_log_filter_puts_the_trace_id_on_every_record(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("hubsig.test.trace")
    caplog.handler.addFilter(TraceIdFilter())
    trace = TraceContext.from_headers({"X-B3-TraceId": "463ac35c9f6413ad48485a3953bb6124"})
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("outside")
        with use_trace(trace):
            logger.info("inside")
    assert [getattr(record, "trace_id", None) for record in caplog.records] == [
        "-",
        "463ac35c9f6413ad48485a3953bb6124",
    ]


@given(
    sampled=st.sampled_from([None, "0", "1", "true", "false", "2", ""]),
    flags=st.sampled_from([None, "1", "0", ""]),
    trace_id=st.sampled_from([None, "", "xyz", "0" * 32]),
)
def test_a_sampling_decision_sent_without_ids_is_kept_and_forwarded(
    sampled: str | None, flags: str | None, trace_id: str | None
) -> None:
    """b3-propagation: ``X-B3-Sampled: 0`` or ``X-B3-Flags: 1`` may come alone; the fresh
    trace keeps the decision in the multi-header form, and passes it on."""
    headers = [
        (name, value)
        for name, value in (
            ("X-B3-Sampled", sampled),
            ("X-B3-Flags", flags),
            ("X-B3-TraceId", trace_id),
        )
        if value is not None
    ]
    trace = TraceContext.from_headers(headers)
    assert trace.generated
    debug = flags == "1"
    expected = (
        True if debug else {"1": True, "true": True, "0": False, "false": False}.get(sampled or "")
    )
    assert (trace.sampled, trace.debug) == (expected, debug)
    outgoing = trace.to_headers()
    if debug:
        assert outgoing["X-B3-Flags"] == "1"
    elif expected is not None:
        assert outgoing["X-B3-Sampled"] == ("1" if expected else "0")
    else:
        assert "X-B3-Sampled" not in outgoing
        assert "X-B3-Flags" not in outgoing


@given(
    st.tuples(
        st.text(max_size=4),
        st.text(max_size=4),
        st.none() | st.text(max_size=4),
        st.none() | st.booleans(),
        st.booleans(),
        st.booleans(),
        st.none() | st.text(max_size=4),
    )
)
def test_the_hot_paths_maker_makes_what_the_constructor_makes(values: tuple[Any, ...]) -> None:
    """Every request's trace is made through its slots, without the generated ``__init__``:
    the same object, field for field, as ``TraceContext(...)`` (a field added to the class
    and not to the maker fails at import, since the maker unpacks one setter per field)."""
    from hubsig._trace import _trace

    made, constructed = _trace(*values), TraceContext(*values)
    assert made == constructed
    assert repr(made) == repr(constructed)
    assert type(made) is TraceContext
    with pytest.raises(AttributeError):
        made.trace_id = "changed"  # type: ignore[misc]
