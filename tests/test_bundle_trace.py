"""An exported bundle opens as a trace through the storage layer (profiling.storage.bundle), while the
trace layer only reads trace formats and names any other JSON document's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profiling.storage.bundle import export_bundle, load_any_trace
from profiling.storage.store import Store
from profiling.traces import OtherFormat, TraceError, load_trace
from profiling.traces.record import capture_trace


def test_a_bundle_opens_as_the_traces_it_embeds(tmp_path):
    import tensorflow as tf

    x = tf.random.normal([10_000])
    xplane = Path(capture_trace(tf, lambda: tf.nn.relu(x), lambda: None, str(tmp_path)))
    store = Store(tmp_path / "data")
    with store.saving_run({"variants": ["nn_relu"]}, "b", 1) as run_id:
        sha = store.put_trace(xplane.read_bytes(), xplane.name)
        store.add_case({"run_id": run_id, "case_id": f"{run_id}-0000", "idx": 0,
                        "status": "ok", "median_s": 1e-5, "trace_sha256": sha}, [1e-5])
    data = json.dumps(export_bundle(store, [run_id]), default=str).encode()

    with pytest.raises(OtherFormat, match="relu_lab_bundle"):
        load_trace(data, "bundle.json")
    trace = load_any_trace(data, "bundle.json")
    assert trace.source == "bundle" and len(trace.events) > 0
    assert trace.events["pid"].str.startswith(f"{run_id}-0000/").all()
    assert "Relu" in set(trace.events["name"])


def test_another_format_stays_a_one_line_trace_error():
    with pytest.raises(TraceError, match="'notes' document, not a trace"):
        load_any_trace(b'{"format": "notes", "items": []}', "notes.json")
