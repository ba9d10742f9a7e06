"""Analyzers on real TensorFlow profiler traces captured here, converted with xprof."""

from __future__ import annotations

import glob
import json

import numpy as np
import pytest

from profiling.traces import framework_op_stats, load_trace, summarize
from profiling.traces.attribution import CPU_TIME_LABEL, REGION, UNATTRIBUTED, cpu_us
from profiling.traces.breakdown import busy_union_us, time_breakdown
from profiling.traces.classify import classify_events
from profiling.traces.op_stats import tf_op_stats, top_ops

STEPS = 3


def _capture(tmp_path, fn, x):
    import tensorflow as tf

    fn(x)
    tf.profiler.experimental.start(str(tmp_path))
    for i in range(STEPS):
        with tf.profiler.experimental.Trace("step", step_num=i, _r=1):
            fn(x)
    tf.profiler.experimental.stop()
    return glob.glob(f"{tmp_path}/**/*.xplane.pb", recursive=True)[0]


@pytest.fixture(scope="module")
def conv_trace(tmp_path_factory):
    import tensorflow as tf

    x = tf.random.normal([1, 32, 32, 16])
    w, b = tf.random.normal([3, 3, 16, 16]), tf.zeros([16])
    fn = tf.function(lambda x: tf.maximum(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b), 0.0))
    return _capture(tmp_path_factory.mktemp("conv"), fn, x)


@pytest.fixture(scope="module")
def eager_trace(tmp_path_factory):
    import tensorflow as tf

    x = tf.random.normal([200_000])
    return _capture(tmp_path_factory.mktemp("eager"), tf.nn.relu, x)


@pytest.fixture(scope="module")
def conv_net_trace(tmp_path_factory):
    """Three Conv2D + BatchNorm + ReLU blocks under tf.function: the convolutions' work runs
    on the intra-op (Eigen) pool threads, the ops on the inter-op tf_Compute threads."""
    import keras
    import tensorflow as tf

    inp = keras.Input((32, 32, 3))
    x = inp
    for i in range(3):
        x = keras.layers.Conv2D(16, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
    step = tf.function(lambda x: model(x, training=False))
    return _capture(tmp_path_factory.mktemp("conv_net"), step, tf.random.normal([8, 32, 32, 3]))


def test_pool_work_of_a_conv_net_is_given_to_its_ops(conv_net_trace):
    trace = load_trace(conv_net_trace)
    ev = trace.events
    threads = set(ev.thread.astype(str))
    assert any(t.startswith("tf_numa_") and "_Eigen/" in t for t in threads), threads
    s = summarize(trace)
    pool, top = s["pool_work"], s["top_ops"]
    assert s["op_time"] == CPU_TIME_LABEL and pool["pool_us"] > 0
    op_time = top_ops(ev, top=len(ev)).cpu_us.sum()
    assert pool["unattributed_us"] <= 0.10 * op_time, (pool, op_time)
    tf_ops = set(ev.name[ev.cat == "tf_op"].astype(str))
    assert top.name.iloc[0] in tf_ops and top.name.iloc[0] not in (REGION, UNATTRIBUTED), top
    assert REGION not in set(top.name)
    conv = top[top.name.str.contains("Conv2D")]
    assert len(conv) and (conv.cpu_us > conv.self_us).all(), top
    assert cpu_us(ev).sum() == pytest.approx(ev.self_us.sum())


def test_graph_ops_from_xplane(conv_trace):
    trace = load_trace(conv_trace)
    assert trace.source == "xplane"
    ops = tf_op_stats(trace.events).set_index("op_name")
    assert ops.loc["Maximum", "op_type"] == "Maximum"
    assert ops.loc["Maximum", "occurrences"] == STEPS
    assert "Fused" in ops.loc["BiasAdd", "op_type"]  # Conv2D+BiasAdd fused by Grappler
    fos = framework_op_stats(conv_trace).set_index("op_name")
    assert set(fos.op_type) == set(ops.op_type)  # xprof sees the same ops ran


def test_breakdown_matches_events_by_hand(conv_trace):
    ev = load_trace(conv_trace).events
    b = time_breakdown(ev)
    kind = classify_events(ev)
    # every TF op is compute; thread time = self time of each kind
    assert (kind[ev.cat == "tf_op"] == "compute").all()
    assert b["thread_time"]["compute_us"] == pytest.approx(ev.self_us[kind == "compute"].sum())
    assert sum(b["thread_time"].values()) == pytest.approx(ev.self_us.sum())
    # wall: idle = the span minus the union of all events; the five parts add up to the span
    span = (ev.ts_us + ev.dur_us).max() - ev.ts_us.min()
    assert b["idle_us"] == pytest.approx(span - busy_union_us(ev.ts_us.to_numpy(),
                                                              (ev.ts_us + ev.dur_us).to_numpy()))
    parts = ("compute_us", "memcpy_us", "collective_us", "idle_us", "other_us")
    assert sum(b[k] for k in parts) == pytest.approx(span)
    assert b["collective_us"] == 0 and b["compute_comm_ratio"] is None


def test_eager_op_named_and_timed(eager_trace):
    ev = load_trace(eager_trace).events
    relu = ev[(ev.cat == "tf_op") & (ev.name == "Relu")]
    assert len(relu) == STEPS and (relu.self_us > 0).all()
    assert all(json.loads(a)["is_eager"] == "1" for a in relu.args)
    s = summarize(load_trace(eager_trace))
    assert s["top_ops"].name.iloc[0] == "Relu"
    assert s["event_count"] == len(ev)
    assert np.isclose(s["duration_us"], (ev.ts_us + ev.dur_us).max() - ev.ts_us.min())


def test_tensorboard_json_gz_matches_xplane(conv_trace, tmp_path):
    import gzip

    from profiling.traces.xplane import tool_data

    p = tmp_path / "vm.trace.json.gz"
    p.write_bytes(gzip.compress(tool_data(conv_trace, "trace_viewer").encode()))
    from_json, from_pb = load_trace(p), load_trace(conv_trace)
    assert from_json.source == "chrome"
    assert from_json.events.drop(columns="args").equals(from_pb.events.drop(columns="args"))
    assert time_breakdown(from_json.events) == time_breakdown(from_pb.events)


def test_xplane_without_args_reads_the_same_events(conv_net_trace, eager_trace):
    """load_xplane(keep_args=False), what the commands read: every column but args equal, the
    eager op still named after the op it ran, and the same summary."""
    from profiling.traces.xplane import load_xplane

    for path in (conv_net_trace, eager_trace):
        kept, dropped = load_xplane(path), load_xplane(path, keep_args=False)
        assert dropped.events.drop(columns="args").equals(kept.events.drop(columns="args"))
        assert set(dropped.events["args"].astype(str)) == {"{}"}
        a, b = summarize(kept), summarize(dropped)
        assert a["top_ops"].equals(b["top_ops"]) and a["breakdown"] == b["breakdown"]
