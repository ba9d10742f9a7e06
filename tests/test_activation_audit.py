"""The activation audit on real captures of small Keras models (every kind and spelling, four
captures in all) and on hand-written traces (PyTorch names, training gradients, CPU time)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from profiling.analysis.activations import KINDS, audit
from profiling.traces import load_trace
from profiling.traces.record import capture_trace


def _capture(tmp_path_factory, build, shape):
    import tensorflow as tf

    model = build()
    step = tf.function(lambda x: model(x, training=False))
    x = tf.random.normal(shape, seed=0)
    step(x)
    path = capture_trace(tf, lambda: step(x), lambda: None, str(tmp_path_factory.mktemp("t")))
    return audit(load_trace(path).events)


def _by_layer(result):
    """layer name (Keras' `_N` suffix of the graph scope dropped) -> its activation rows."""
    out: dict[str, list[dict]] = {}
    for r in result["activations"]:
        layer = r["scope"].rsplit("/", 1)[-1].rsplit("_", 1)[0]
        out.setdefault(layer, []).append(r)
    return out


def _kinds_model():
    import keras

    L = keras.layers
    inp = keras.Input((8, 8, 4))
    x = inp
    # each activation after a 1x1 conv of its own, so no two elementwise layers meet
    acts = [
        ("gelu_exact", L.Activation("gelu", name="gelu_exact")),
        ("gelu_approx", L.Lambda(lambda t: keras.activations.gelu(t, approximate=True),
                                 name="gelu_approx")),
        ("hard_silu_act", L.Activation("hard_silu", name="hard_silu_act")),
        ("hard_sigmoid_act", L.Activation(keras.activations.hard_sigmoid,
                                          name="hard_sigmoid_act")),
        ("mish_act", L.Activation(keras.activations.mish, name="mish_act")),
        ("selu_act", L.Activation("selu", name="selu_act")),
        ("softplus_act", L.Activation("softplus", name="softplus_act")),
        ("softsign_act", L.Activation("softsign", name="softsign_act")),
        ("tanh_act", L.Activation(keras.activations.tanh, name="tanh_act")),
        ("prelu_act", L.PReLU(name="prelu_act")),
    ]
    for i, (_, layer) in enumerate(acts):
        x = layer(L.Conv2D(4, 1, use_bias=False, name=f"c{i}")(x))
    x = L.Conv2D(4, 1, activation="silu", name="conv_silu")(x)
    x = L.Conv2D(4, 1, use_bias=False, name="c_last")(x)
    x = L.Activation("sigmoid", name="sigmoid_act")(x)
    return keras.Model(inp, x, name="kinds")


# layer -> (kind, allowed confidences); SiLU is `_MklSwish` with oneDNN, Sigmoid + Mul without
KINDS_EXPECTED = {
    "gelu_exact": ("gelu", {"pattern"}), "gelu_approx": ("gelu_tanh", {"pattern"}),
    "hard_silu_act": ("hard_swish", {"pattern"}),
    "hard_sigmoid_act": ("hard_sigmoid", {"pattern"}), "mish_act": ("mish", {"pattern", "exact"}),
    "selu_act": ("selu", {"exact"}), "softplus_act": ("softplus", {"exact"}),
    "softsign_act": ("softsign", {"exact"}), "tanh_act": ("tanh", {"exact"}),
    "prelu_act": ("prelu", {"pattern"}),
    "conv_silu": ("silu", {"pattern", "exact"}), "sigmoid_act": ("sigmoid", {"exact"}),
}


@pytest.fixture(scope="module")
def kinds_audit(tmp_path_factory):
    return _capture(tmp_path_factory, _kinds_model, [2, 8, 8, 4])


def test_every_modern_kind_found_with_its_kind_and_confidence(kinds_audit):
    found = _by_layer(kinds_audit)
    got = {layer: [(r["kind"], r["confidence"]) for r in found.get(layer, [])]
           for layer in KINDS_EXPECTED}
    for layer, (kind, confidences) in KINDS_EXPECTED.items():
        assert len(got[layer]) == 1, (layer, got[layer])
        assert got[layer][0][0] == kind and got[layer][0][1] in confidences, (layer, got[layer])
    # nothing else is an activation: the convs carry none of their own
    assert set(found) == set(KINDS_EXPECTED), sorted(found)
    assert all(r["occurrences"] == 3 for r in kinds_audit["activations"])
    gelu = found["gelu_exact"][0]
    assert "Erfc" in gelu["ops"] and gelu["self_us"] > 0 and gelu["backward_us"] == 0
    assert {r["kind"] for r in kinds_audit["activations"]} <= set(KINDS)


def _relus_model():
    import keras
    import tensorflow as tf

    L = keras.layers
    inp = keras.Input((8, 8, 4))
    x = L.Conv2D(4, 3, padding="same", name="conv_a")(inp)
    x = L.ReLU(name="relu_layer")(x)
    x = L.Conv2D(4, 3, padding="same", activation="relu6", name="conv_relu6")(x)
    x = L.Conv2D(4, 3, padding="same", name="conv_b")(x)
    x = L.LeakyReLU(name="leaky_layer")(x)
    x = L.Conv2D(4, 3, padding="same", name="conv_c")(x)
    x = L.ELU(name="elu_layer")(x)
    x = L.Conv2D(4, 3, padding="same", name="conv_d")(x)
    x = L.Lambda(lambda t: tf.maximum(t, 0.0), name="max0")(x)
    x = L.Conv2D(4, 3, padding="same", name="conv_e")(x)
    x = L.Lambda(lambda t: tf.where(t > 0, t, 0.0), name="where0")(x)
    x = L.Lambda(lambda t: tf.where(t > 0, t, 0.2 * t), name="leaky_where")(x)
    x = L.Lambda(lambda t: tf.where(t > 0, t, tf.exp(t) - 1.0), name="elu_where")(x)
    # an epsilon clamp (Maximum) inside normalization layers: no activation
    x = L.Normalization(mean=0.0, variance=1.0, name="norm")(x)
    x = L.Lambda(lambda t: t / tf.maximum(tf.sqrt(tf.reduce_mean(t * t)), 1e-3),
                 name="rms_scale")(x)
    return keras.Model(inp, x, name="relus")


RELUS_EXPECTED = {  # layer -> (kind, fused, confidence)
    "relu_layer": ("relu", True, "exact"), "conv_relu6": ("relu6", True, "exact"),
    "leaky_layer": ("leaky_relu", True, "exact"), "elu_layer": ("elu", True, "exact"),
    "max0": ("maximum", False, "pattern"), "where0": ("where", False, "pattern"),
    "leaky_where": ("leaky_relu", False, "pattern"), "elu_where": ("elu", False, "pattern"),
}


@pytest.fixture(scope="module")
def relus_audit(tmp_path_factory):
    return _capture(tmp_path_factory, _relus_model, [2, 8, 8, 4])


def test_relu_spellings_found_and_epsilon_clamps_are_not(relus_audit):
    found = _by_layer(relus_audit)
    assert set(found) == set(RELUS_EXPECTED), sorted(found)
    got = {k: [(r["kind"], r["fused"], r["confidence"]) for r in v] for k, v in found.items()}
    assert got == {k: [v] for k, v in RELUS_EXPECTED.items()}
    for r in relus_audit["activations"]:
        if r["fused"] is True:  # no time of its own: the kernel's is beside it
            assert r["self_us"] is None and r["pct"] is None and r["kernel_us"] > 0
            assert "Fused" in r["op"]
        else:
            assert r["self_us"] > 0 and r["kernel_us"] is None
    assert relus_audit["unfused_pct"] == pytest.approx(
        sum(r["pct"] for r in relus_audit["activations"] if r["fused"] is False))


def test_spelling_advice_is_grouped_by_spelling_and_quotes_the_lab(relus_audit):
    advice = {a["kind"]: a for a in relus_audit["advice"] if a["cause"] == "spelling"}
    for kind, layer in (("where", "where0"), ("maximum", "max0")):
        pct = next(r["pct"] for r in relus_audit["activations"] if layer in r["scope"])
        if pct < 0.1:  # negligible sites get no advice
            assert kind not in advice
            continue
        a = advice[kind]
        assert "tf.nn.relu" in a["text"] and "this lab measured" in a["text"]
        assert len(a["sites"]) == 1 and layer in a["sites"][0]
        assert a["pct"] == pytest.approx(pct) and a["per"] == "step" and a["us_per_step"] > 0
    assert relus_audit["steps"] == 3
    assert relus_audit["recommendations"] == [a["text"] for a in relus_audit["advice"]]


def _bn_model():
    """ResNet-style Conv -> BN -> ReLU blocks, an EfficientNet-style Conv -> BN -> swish and a
    ConvNeXt-style pointwise Dense -> GELU on an NHWC tensor."""
    import keras

    L = keras.layers
    inp = keras.Input((32, 32, 8))
    x = inp
    for i in range(3):
        x = L.Conv2D(16, 1, name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}")(x)
        x = L.ReLU(name=f"relu{i}")(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)  # MobileNet/EfficientNet-style
    x = L.BatchNormalization(name="bn_dw")(x)
    x = L.ReLU(6.0, name="dw_relu6")(x)
    x = L.AveragePooling2D(4, name="pool")(x)
    x = L.Conv2D(8, 1, name="conv_se")(x)
    x = L.BatchNormalization(name="bn_se")(x)
    x = L.Activation("swish", name="swish_act")(x)
    x = L.Dense(16, name="pwconv1")(x)
    x = L.Activation("gelu", name="gelu_act")(x)
    return keras.Model(inp, x, name="resnet_like")


@pytest.fixture(scope="module")
def bn_audit(tmp_path_factory):
    return _capture(tmp_path_factory, _bn_model, [4, 32, 32, 8])


def test_silu_and_gelu_models_report_their_share(bn_audit):
    found = _by_layer(bn_audit)
    assert set(found) == {"relu0", "relu1", "relu2", "dw_relu6", "swish_act", "gelu_act"}, \
        sorted(found)
    assert [r["kind"] for r in found["swish_act"]] == ["silu"]
    assert [r["kind"] for r in found["gelu_act"]] == ["gelu"]
    for layer in ("swish_act", "gelu_act"):
        r = found[layer][0]
        assert r["fused"] is False and r["pct"] > 0
    total = sum(r["pct"] for r in bn_audit["activations"])
    assert bn_audit["activation_pct"] == pytest.approx(total) and 0 < total < 100


def test_relus_after_batchnorm_get_one_grouped_recommendation(bn_audit):
    relus = [r for r in bn_audit["activations"] if r["kind"] == "relu"]
    assert len(relus) == 3 and all(r["fused"] is False for r in relus)
    bn = [a for a in bn_audit["advice"] if a["cause"] == "batchnorm"]
    assert len(bn) == 1, bn_audit["advice"]
    a = bn[0]
    assert sorted(a["sites"]) == sorted(f"{r['scope']}/{r['op']}" for r in relus)
    assert a["pct"] == pytest.approx(sum(r["pct"] for r in relus))
    steps = bn_audit["steps"]
    assert steps == 3
    assert a["us_per_step"] == pytest.approx(sum(r["self_us"] for r in relus) / steps)
    assert a["text"].startswith("3 Relu after BatchNorm") and "folding BN" in a["text"]
    assert [c.rsplit("_", 1)[0] for c in a["feeds"]] == ["conv0", "conv1", "conv2"]
    # SiLU and GELU: nothing this lab measured says they would fuse here, so no fusion advice;
    # after a depthwise conv the advice says the fold removes the BN but cannot fuse (measured)
    assert {a["kind"] for a in bn_audit["advice"]} <= {"relu", "relu6"}
    dw = [a for a in bn_audit["advice"] if a["kind"] == "relu6"]
    assert [a["cause"] for a in dw] == ["batchnorm_depthwise"], bn_audit["advice"]
    for a in dw:
        assert a["text"].startswith("1 Relu6 after BatchNorm after a depthwise conv")
        assert "stays a separate op" in a["text"] and "dw_relu6" in a["sites"][0]


def _folded_model():
    import keras

    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = inp
    for i in range(4):  # BatchNorm folded into the convs: Conv + BiasAdd + ReLU
        x = L.Conv2D(8, 3, padding="same", activation="relu", name=f"folded{i}")(x)
    return keras.Model(inp, x, name="folded")


def test_fused_activations_count_no_kernel_time(tmp_path_factory):
    result = _capture(tmp_path_factory, _folded_model, [4, 16, 16, 3])
    rows = result["activations"]
    assert len(rows) == 4 and all(r["kind"] == "relu" and r["fused"] is True for r in rows)
    assert all(r["self_us"] is None and r["pct"] is None and r["kernel_us"] > 0 for r in rows)
    assert result["activation_pct"] == 0 and result["unfused_pct"] == 0
    assert result["advice"] == [] and result["recommendations"] == []


# ---- hand-written traces ---------------------------------------------------------------------
def _trace(tmp_path, events):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": events}))
    return load_trace(str(p)).events


def _op(name, ts, dur, long_name=None, tid=1, cat="tf_op"):
    e = {"ph": "X", "name": name, "cat": cat, "pid": 1, "tid": tid, "ts": ts, "dur": dur}
    if long_name:
        e["args"] = {"long_name": long_name}
    return e


def test_training_gradients_are_the_backward_part_of_their_site(tmp_path):
    events = _trace(tmp_path, [
        _op("step 0", 0, 200, cat="python"),
        _op("_FusedConv2D", 1, 40, "m/conv1/BiasAdd:_FusedConv2D"),
        _op("Relu", 42, 10, "m/act/Relu:Relu"),
        _op("Sigmoid", 53, 5, "m/swish/Sigmoid:Sigmoid"),
        _op("Mul", 59, 3, "m/swish/mul_1:Mul"),
        _op("Mul", 70, 4, "gradient_tape/m/swish/mul_1/Mul:Mul"),
        _op("SigmoidGrad", 75, 6, "gradient_tape/m/swish/Sigmoid/SigmoidGrad:SigmoidGrad"),
        _op("ReluGrad", 90, 8, "gradient_tape/m/act/ReluGrad:ReluGrad"),
        _op("Conv2DBackpropInput", 100, 50,
            "gradient_tape/m/conv1/convolution/Conv2DBackpropInput:Conv2DBackpropInput"),
    ])
    result = audit(events)
    rows = {r["scope"]: r for r in result["activations"]}
    assert set(rows) == {"m/act", "m/swish"}
    assert rows["m/act"]["backward_us"] == 8 and rows["m/act"]["self_us"] == 10
    assert rows["m/swish"]["kind"] == "silu" and rows["m/swish"]["confidence"] == "pattern"
    assert rows["m/swish"]["self_us"] == 8 and rows["m/swish"]["backward_us"] == 10
    assert rows["m/swish"]["occurrences"] == 1
    # the shares are of all ops' time (126 µs), not the traced span
    assert rows["m/act"]["pct"] == pytest.approx(100 * 10 / 126)
    assert result["steps"] == 1


def test_pytorch_names_kinds_backward_and_no_tensorflow_advice(tmp_path):
    events = _trace(tmp_path, [
        _op("aten::conv2d", 0, 50, cat="cpu_op"),
        _op("aten::silu", 51, 10, cat="cpu_op"), _op("aten::gelu", 62, 10, cat="cpu_op"),
        _op("aten::hardswish", 73, 10, cat="cpu_op"), _op("aten::mish", 84, 10, cat="cpu_op"),
        _op("aten::relu", 95, 10, cat="cpu_op"), _op("aten::clamp_min", 96, 8, cat="cpu_op"),
        _op("ReluBackward0", 110, 6, cat="cpu_op"),
        _op("aten::threshold_backward", 111, 4, cat="cpu_op"),
        _op("aten::silu_backward", 120, 5, cat="cpu_op"),
    ])
    result = audit(events)
    rows = {r["op"]: r for r in result["activations"]}
    assert {op: r["kind"] for op, r in rows.items()} == {
        "aten::silu": "silu", "aten::gelu": "gelu", "aten::hardswish": "hard_swish",
        "aten::mish": "mish", "aten::relu": "relu"}
    assert rows["aten::relu"]["self_us"] == 10 and rows["aten::relu"]["occurrences"] == 1
    assert rows["aten::relu"]["backward_us"] == 6 and rows["aten::silu"]["backward_us"] == 5
    assert all(r["confidence"] == "exact" and r["fused"] is False for r in rows.values())
    assert result["advice"] == []  # this lab measured nothing about PyTorch fusion
    assert result["steps"] == 0


def test_cpu_time_is_the_share_and_fused_kernels_stay_out(tmp_path):
    events = _trace(tmp_path, [
        _op("_MklNativeFusedConv2D", 0, 40, "model/conv1/Relu:_MklNativeFusedConv2D"),
        _op("Relu6", 41, 10, "model/act/Relu6:Relu6"),
        _op("Mul", 52, 10, "model/scale/mul:Mul"),
    ])
    cpu = np.zeros(len(events))
    names = events["name"].astype(str).to_numpy()
    cpu[names == "_MklNativeFusedConv2D"] = 300.0  # pool work attributed to the conv
    cpu[names == "Relu6"] = 20.0
    cpu[names == "Mul"] = 80.0
    result = audit(events, cpu_us=cpu)
    rows = {r["op"]: r for r in result["activations"]}
    assert rows["_MklNativeFusedConv2D"]["kernel_us"] == 300
    assert rows["_MklNativeFusedConv2D"]["self_us"] is None
    assert rows["Relu6"]["self_us"] == 20 and rows["Relu6"]["pct"] == pytest.approx(5.0)
    assert result["activation_pct"] == pytest.approx(5.0)
    assert audit(events, cpu_us=cpu, op_total_us=1000)["activation_pct"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="cpu_us has 2 values"):
        audit(events, cpu_us=[1.0, 2.0])


def test_a_fused_kernels_fused_ops_attribute_names_what_it_absorbed(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"traceEvents": [
        {**_op("_MklNativeFusedConv2D", 0, 40, "m/act/mul:_MklNativeFusedConv2D"),
         "args": {"long_name": "m/act/mul:_MklNativeFusedConv2D",
                  "fused_ops": "[BiasAdd, _MklFusedMish]"}},
        _op("_MklNativeFusedConv2D", 50, 40, "m/hs/mul:_MklNativeFusedConv2D"),
        _op("_MklNativeFusedMatMul", 100, 20, "m/dense/BiasAdd:_MklNativeFusedMatMul"),
        _op("_MklNativeFusedMatMul", 130, 20, "m/pw/Gelu/mul_2:_MklNativeFusedMatMul"),
    ]}))
    rows = {r["scope"]: r for r in audit(load_trace(str(p)).events)["activations"]}
    assert (rows["m/act"]["kind"], rows["m/act"]["confidence"]) == ("mish", "exact")
    # without the attribute a kernel named after a `mul` is Mish or hard-swish: no kind said
    assert (rows["m/hs"]["kind"], rows["m/hs"]["confidence"]) == ("unknown", "guess")
    assert "m/dense" not in rows  # Conv/MatMul + BiasAdd alone absorbed no activation
    assert (rows["m/pw"]["kind"], rows["m/pw"]["fused"]) == ("gelu", True)  # oneDNN's GELU


def test_advice_only_where_a_fusion_was_possible_and_the_time_is_not_negligible(tmp_path):
    events = _trace(tmp_path, [
        _op("step 0", 0, 10_000, cat="python"),
        _op("Relu", 1, 50, "m/lone/Relu:Relu"),  # nothing feeds it that could fuse
        _op("_FusedConv2D", 60, 400, "m/conv/BiasAdd:_FusedConv2D"),
        _op("Relu", 470, 50, "m/act/Relu:Relu"),  # right after a conv, still separate
        _op("_FusedConv2D", 530, 8_000, "m/conv2/BiasAdd:_FusedConv2D"),
        _op("Sigmoid", 8_540, 5, "m/gate/Sigmoid:Sigmoid"),  # 0.06%: negligible
        _op("Relu", 8_550, 20, "m/other/Relu:Relu", tid=2),  # its thread ran nothing before
    ])
    advice = audit(events)["advice"]
    assert [(a["cause"], a["sites"]) for a in advice] == [("not_fused", ["m/act/Relu"])]
    assert "in this lab Conv2D/MatMul + BiasAdd + relu fuse" in advice[0]["text"]
    assert advice[0]["feeds"] == ["conv"] and advice[0]["us_per_step"] == 50


def test_batchnorm_advice_finds_its_conv_when_the_executor_ran_it_on_another_thread(tmp_path):
    def block(t0: float, conv_tid: int) -> list[dict]:
        return [_op("_FusedConv2D", t0, 400, "m/conv/BiasAdd:_FusedConv2D", tid=conv_tid),
                _op("Mul", t0 + 410, 60, "m/bn/batchnorm/mul_1:Mul", tid=2),
                _op("AddV2", t0 + 480, 60, "m/bn/batchnorm/add_1:AddV2", tid=2),
                _op("Relu", t0 + 550, 50, "m/relu/Relu:Relu", tid=2)]

    for conv_tid in (2, 1):  # the same thread, then another one
        events = _trace(tmp_path, [_op("step 0", 0, 10_000, cat="python"),
                                   _op("Const", 5, 5, "m/other/Const:Const", tid=2),
                                   *block(20, conv_tid)])
        advice = audit(events)["advice"]
        assert [(a["cause"], a["sites"], a["feeds"]) for a in advice] == \
            [("batchnorm", ["m/relu/Relu"], ["conv"])], conv_tid
