"""The Chrome trace reader on arbitrary JSON: a Trace or a one-line TraceError, never a raw
exception; the summary and audit of whatever it reads are finite JSON."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiling.analysis.activations import audit
from profiling.cli.trace import json_safe
from profiling.traces import TraceError, load_trace, summarize

scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                   st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=5), inner,
                                                                     max_size=3)), max_leaves=6)
event = st.fixed_dictionaries({}, optional={
    "ph": st.one_of(st.sampled_from(["X", "B", "E", "M", "i"]), value),
    "name": st.one_of(st.sampled_from(["Relu", "process_name", "aten::relu"]), value),
    "cat": value, "pid": value, "tid": value,
    "ts": st.one_of(st.floats(-1e20, 1e20), value), "dur": st.one_of(st.floats(-10, 1e20), value),
    "args": st.one_of(st.fixed_dictionaries({"long_name": st.text(max_size=12)}), value),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(event, event, value), max_size=8), st.booleans())
def test_reader_never_raises_a_raw_exception(events, wrapped):
    doc = {"traceEvents": events} if wrapped else events
    data = json.dumps(doc).encode()
    try:
        trace = load_trace(data, "fuzz.json")
    except TraceError as e:
        assert "\n" not in str(e) and str(e)
        return
    s = summarize(trace)
    json.dumps(json_safe({**s, "audit": audit(trace.events)}), allow_nan=False)
    assert sum(s["breakdown"].values()) >= 0
