"""Real ReLU-only captures (the worker's own capture code) in eager, function and XLA mode:
compute is most of the busy time, and with nothing crossing devices the ratio is null; and the
activation audit of a small Keras CNN written six ways."""

from __future__ import annotations

import glob

import pytest

from profiling.analysis.activations import audit
from profiling.traces import load_trace, summarize
from profiling.traces.record import capture_trace

# 16M floats: a ReLU long enough that on a shared, busy 2-vCPU machine the tf.function call's
# fixed costs (Python dispatch, executor hand-off, waiting for a CPU: up to a few ms under load)
# stay a minority; at 1M they can be half of the step (README, "Traces").
SIZE = 16_000_000
CASES = [("nn_relu", "eager"), ("nn_relu", "function"), ("nn_relu", "xla"),
         ("custom_op", "eager"), ("custom_op", "function")]


def _callable(variant, mode):
    import tensorflow as tf

    from relu_impls import variants

    fn = variants.get(variant)
    if mode == "eager":
        return fn
    return tf.function(fn, jit_compile=mode == "xla")


@pytest.mark.parametrize(("variant", "mode"), CASES)
def test_relu_capture_is_mostly_compute_with_null_ratio(tmp_path, variant, mode):
    import tensorflow as tf

    x = tf.random.normal([SIZE])
    fn = _callable(variant, mode)
    fn(x)
    path = capture_trace(tf, lambda: fn(x), lambda: None, str(tmp_path))
    s = summarize(load_trace(path))
    b = s["breakdown"]
    assert b["compute_us"] > 0.5 * s["busy_us"], b
    assert s["compute_comm_ratio"] is None and b["collective_us"] == 0
    assert sum(b.values()) == pytest.approx(s["duration_us"])


# The op's own events: TF's kernel, the custom op's, or XLA's fusion kernel.
OP_NAMES = r"^(?:Relu|CustomRelu|\w+_fusion(?:\.\d+)?)$"


@pytest.mark.parametrize(("variant", "mode"), CASES)
def test_relu_capture_at_1m_gives_the_op_to_compute_under_waiting_wrappers(tmp_path, variant,
                                                                          mode):
    """At 1M elements: while the op runs, the caller's wrappers that wait for it
    (FunctionRun, KernelAndDeviceFunc::Run, EagerKernelExecute, the step annotation) never take
    its time, so compute holds at least the op's whole span; eager mode is mostly compute. Under
    tf.function and XLA the rest of the step is the call's own dispatch and hand-off, about as
    long as the ReLU here (README, "What the breakdown means"), so no share is asserted."""
    import tensorflow as tf

    from profiling.traces.breakdown import busy_union_us

    x = tf.random.normal([1_000_000])
    fn = _callable(variant, mode)
    fn(x)
    path = capture_trace(tf, lambda: fn(x), lambda: None, str(tmp_path))
    s = summarize(load_trace(path))
    b = s["breakdown"]
    ev = load_trace(path).events
    op = ev[ev["name"].astype(str).str.fullmatch(OP_NAMES).to_numpy()]
    assert len(op) == 3, sorted(set(ev["name"].astype(str)))  # one per captured step
    op_span = busy_union_us(op.ts_us.to_numpy(), (op.ts_us + op.dur_us).to_numpy())
    assert b["compute_us"] >= op_span - 1e-6, (b, op_span)
    assert s["compute_comm_ratio"] is None and b["collective_us"] == 0
    assert sum(b.values()) == pytest.approx(s["duration_us"])
    if mode == "eager":
        assert b["compute_us"] > 0.5 * s["busy_us"], b


def _cnn():
    import keras
    import tensorflow as tf

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_relu")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu_layer")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv3")(x)
    x = keras.layers.LeakyReLU(name="leaky")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv4")(x)
    x = keras.layers.Lambda(lambda t: tf.maximum(t, 0.0), name="max0")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv5")(x)
    x = keras.layers.Lambda(lambda t: tf.where(t > 0, t, 0.0), name="where0")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu6", name="dense6")(x)
    return keras.Model(inp, x, name="model")


def test_audit_finds_every_activation_of_a_keras_cnn(tmp_path):
    import tensorflow as tf

    model = _cnn()
    step = tf.function(lambda x: model(x, training=False))
    x = tf.random.normal([4, 16, 16, 3])
    step(x)
    tf.profiler.experimental.start(str(tmp_path))
    for i in range(3):
        with tf.profiler.experimental.Trace("step", step_num=i, _r=1):
            step(x)
    tf.profiler.experimental.stop()
    path = glob.glob(f"{tmp_path}/**/*.xplane.pb", recursive=True)[0]
    result = audit(load_trace(path).events)
    found = {r["scope"].rsplit("/", 1)[-1].rsplit("_", 1)[0]: r for r in result["activations"]}
    # layer -> (kind, fused): Grappler fuses Conv2D/MatMul + BiasAdd + these activations
    expected = {"conv_relu": ("relu", True), "relu_layer": ("relu", True),
                "leaky": ("leaky_relu", True), "dense6": ("relu6", True),
                "max0": ("maximum", False), "where0": ("where", False)}
    assert {k: (found[k]["kind"], found[k]["fused"]) for k in expected} == expected
    assert all(found[k]["occurrences"] == 3 for k in expected)
    assert found["where0"]["op"] == "SelectV2" and "Fused" in found["conv_relu"]["op"]
    assert result["unfused_pct"] == pytest.approx(found["max0"]["pct"] + found["where0"]["pct"])
    assert len(result["recommendations"]) == 2
    assert any("where0" in line and "tf.where" in line and "write it as tf.nn.relu" in line
               for line in result["recommendations"])
