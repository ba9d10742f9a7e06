"""The registry: ids, validation, NumPy agreement, gradients, XLA, the adaptive and int8 variants."""

from __future__ import annotations

import math
import re

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import relu_impls
from relu_impls.reference import fake_quant_relu, reference

EXPECTED_IDS = [
    "where", "maximum", "nn_relu", "keras", "custom_op", "mixed_precision",
    "stable", "clipped", "leaky", "adaptive", "adaptive_stats", "int8",
]  # fmt: skip
FLOAT_CASES = [(v.id, d) for v in relu_impls.VARIANTS.values() for d in v.dtypes if d != "int8"]
# Tolerance per dtype, used only where a variant does arithmetic (leaky, stable, adaptive).
RTOL = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-12}


def needs_op(variant_id: str) -> None:
    if relu_impls.VARIANTS[variant_id].needs_build:
        from relu_impls import custom_op

        custom_op.load()


def test_ids_in_documented_order():
    assert list(relu_impls.VARIANTS) == EXPECTED_IDS


def test_every_variant_is_documented():
    for v in relu_impls.VARIANTS.values():
        assert v.description and v.name and v.dtypes
        assert v.grad_at_zero is None or math.isfinite(v.grad_at_zero)
        for name, p in v.params.items():
            assert p.name == name
            p.validate(v.id, p.default)  # every default is itself valid


@pytest.mark.parametrize(("variant_id", "dtype"), FLOAT_CASES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_matches_numpy_reference(variant_id, dtype, data):
    needs_op(variant_id)
    np_dtype = tf.as_dtype(dtype).as_numpy_dtype
    # Subnormals excluded: TF's CPU kernels flush them to zero (pinned in test_semantics).
    width = 16 if dtype in ("float16", "bfloat16") else 32
    elements = st.floats(-1e3, 1e3, width=width, allow_subnormal=False)
    x = data.draw(
        hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=9), elements=elements)
    )
    x = x.astype(np_dtype)
    fn = relu_impls.get(variant_id)
    got = fn(tf.constant(x)).numpy()
    want = reference(variant_id, x, fn.params)
    assert got.dtype == x.dtype and got.shape == x.shape
    # atol: a product that lands below the smallest normal is flushed to zero by TF.
    tiny = float(ml_dtypes.finfo(np_dtype).tiny)
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np.float64), rtol=RTOL[dtype], atol=tiny
    )


@pytest.mark.parametrize(
    "variant_id", [v.id for v in relu_impls.VARIANTS.values() if v.differentiable]
)
def test_gradient_away_from_kink(variant_id):
    needs_op(variant_id)
    v = relu_impls.VARIANTS[variant_id]
    dtype = tf.float64 if "float64" in v.dtypes else tf.float32
    x = tf.constant([-2.0, -0.5, 0.25, 1.5, 3.0], dtype)  # far from 0: finite differences hold
    fn = relu_impls.get(variant_id)
    theoretical, numerical = tf.test.compute_gradient(fn, [x], delta=1e-3)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize(
    "variant_id", [v.id for v in relu_impls.VARIANTS.values() if v.differentiable]
)
def test_declared_gradient_at_zero(variant_id):
    needs_op(variant_id)
    x = tf.zeros([3], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = relu_impls.get(variant_id)(x)
    grad = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(grad, relu_impls.VARIANTS[variant_id].grad_at_zero, rtol=1e-6)


@pytest.mark.parametrize("variant_id", list(relu_impls.VARIANTS))
def test_xla_flag_is_true(variant_id):
    v = relu_impls.VARIANTS[variant_id]
    needs_op(variant_id)
    fn = relu_impls.get(variant_id)
    x = tf.constant([-3, 0, 4], tf.as_dtype(v.dtypes[-1] if v.id != "int8" else "int8"))
    compiled = tf.function(fn, jit_compile=True)
    if v.xla_compilable:
        np.testing.assert_array_equal(compiled(x).numpy(), fn(x).numpy())
    else:
        with pytest.raises(Exception, match="cannot be compiled by XLA"):
            compiled(x)


def test_params_change_the_result():
    x = tf.constant([-2.0, 1.0, 8.0])
    np.testing.assert_allclose(relu_impls.get("leaky", alpha=0.5)(x), [-1.0, 1.0, 8.0])
    np.testing.assert_allclose(relu_impls.get("clipped", clip=6)(x), [0.0, 1.0, 6.0])
    np.testing.assert_allclose(relu_impls.get("stable", epsilon=0.5)(x), [0.5, 1.5, 8.5])


@pytest.mark.parametrize(
    ("variant_id", "params", "error", "mentions"),
    [
        ("relu9", {}, ValueError, ["relu9", "nn_relu"]),
        ("clipped", {"clip": -1.0}, ValueError, ["clipped", "clip=-1.0", "(0, inf]"]),
        ("clipped", {"clip": 0}, ValueError, ["clip=0"]),
        ("leaky", {"alpha": math.nan}, ValueError, ["leaky", "alpha=nan", "[0, 1]"]),
        ("leaky", {"alpha": "big"}, TypeError, ["alpha='big'", "str"]),
        ("leaky", {"alpha": True}, TypeError, ["alpha=True"]),
        ("int8", {"scale": 0.0}, ValueError, ["int8", "scale=0.0"]),
        ("int8", {"zero_point": 1.5}, ValueError, ["zero_point=1.5", "integer"]),
        ("int8", {"zero_point": 200}, ValueError, ["zero_point=200", "[-128, 127]"]),
        ("stable", {"eps": 1e-3}, ValueError, ["eps", "epsilon"]),
    ],
)
def test_bad_parameters_name_variant_value_and_range(variant_id, params, error, mentions):
    with pytest.raises(error) as info:
        relu_impls.get(variant_id, **params)
    for word in mentions:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("variant_id", "dtype"),
    [
        ("nn_relu", tf.int32),
        ("leaky", tf.int8),
        ("int8", tf.float32),
        ("mixed_precision", tf.float64),
    ],
)
def test_unsupported_dtype_is_refused_not_cast(variant_id, dtype):
    with pytest.raises(TypeError) as info:
        relu_impls.get(variant_id)(tf.zeros([2], dtype))
    assert variant_id in str(info.value) and dtype.name in str(info.value)
    with pytest.raises(TypeError):
        relu_impls.check_dtype(variant_id, dtype)


def test_adaptive_slope_is_per_channel_and_trainable():
    fn = relu_impls.get("adaptive", alpha_init=0.25)
    x = tf.constant([[-4.0, -2.0, 1.0], [-1.0, 3.0, -8.0]])
    np.testing.assert_allclose(fn(x), [[-1.0, -0.5, 1.0], [-0.25, 3.0, -2.0]])
    (alpha,) = fn.trainable_variables
    assert alpha.shape == (3,)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fn(x))
    grad = tape.gradient(loss, alpha)
    np.testing.assert_allclose(grad, [-5.0, -2.0, -8.0])  # d/dalpha = -relu(-x) summed per channel
    alpha.assign_sub(0.01 * grad)
    assert fn(x).numpy()[0, 0] < -1.0


@settings(max_examples=50, deadline=None)
@given(
    scale=st.floats(1e-3, 10.0),
    zero_point=st.integers(-128, 127),
)
def test_int8_agrees_with_fake_quant_reference(scale, zero_point):
    q = np.arange(-128, 128, dtype=np.int8)
    got = relu_impls.get("int8", scale=scale, zero_point=zero_point)(tf.constant(q)).numpy()
    np.testing.assert_array_equal(got, fake_quant_relu(q, scale, zero_point))


def test_variant_fn_works_inside_tf_function():
    fn = relu_impls.get("leaky", alpha=0.1)
    graph_fn = tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    x = tf.constant([[-1.0, 2.0]])
    np.testing.assert_allclose(graph_fn(x), fn(x))
    assert relu_impls.VARIANTS["leaky"].label({"alpha": 0.1}) == "leaky(alpha=0.1)"
    assert relu_impls.VARIANTS["leaky"].label({"alpha": 0.01}) == "leaky"


def test_public_custom_op_takes_its_one_frame_path_for_eager_tensors(monkeypatch):
    """relu_impls.get("custom_op") runs the dtype check and the op's eager fast path in one
    frame; only other inputs (lists, symbolic tensors) take the generic checked call."""
    from relu_impls import custom_op

    needs_op("custom_op")
    generic = []
    real = custom_op.call_checked
    monkeypatch.setattr(custom_op, "call_checked", lambda *a: generic.append(a) or real(*a))
    fn = relu_impls.get("custom_op")
    np.testing.assert_array_equal(fn(tf.constant([-1.0, 2.0])), [0.0, 2.0])
    assert generic == []
    np.testing.assert_array_equal(fn([-1.0, 3.0]), [0.0, 3.0])
    graph = tf.function(fn, input_signature=[tf.TensorSpec([None], tf.float64)])
    np.testing.assert_array_equal(graph(tf.constant([-4.0, 5.0], tf.float64)), [0.0, 5.0])
    assert len(generic) == 2
    with pytest.raises(TypeError, match="does not support dtype int32"):
        fn(tf.constant([1, 2]))


def test_custom_op_variant_accepts_exactly_the_dtypes_its_op_allows():
    """The public call leaves the dtype check to the op's T attribute, so the two must agree."""
    from tensorflow.python.framework import op_def_registry

    needs_op("custom_op")
    relu_impls.get("custom_op")(tf.constant([1.0]))
    (attr,) = [a for a in op_def_registry.get("CustomRelu").attr if a.name == "T"]
    allowed = {tf.as_dtype(t).name for t in attr.allowed_values.list.type}
    assert allowed == set(relu_impls.VARIANTS["custom_op"].dtypes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nn_relu", ("nn_relu", {})),
        ("leaky:alpha=0.2", ("leaky", {"alpha": 0.2})),
        ("leaky(alpha=0.2)", ("leaky", {"alpha": 0.2})),
        (" int8(scale=0.1, zero_point=3) ", ("int8", {"scale": 0.1, "zero_point": 3})),
        ("int8:zero_point=-4:scale=2", ("int8", {"zero_point": -4, "scale": 2.0})),
    ],
)
def test_parse_variant_spec_accepts_both_spellings(text, expected):
    assert relu_impls.parse_variant_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("relu7", "unknown variant 'relu7'"),
        ("leaky:alpha", "not name=number"),
        ("leaky(alpha=big)", "not name=number"),
        ("clipped(clip=-2)", "clip=-2.0 is out of range"),
        ("int8:zero_point=0.5", "zero_point=0.5"),
    ],
)
def test_parse_variant_spec_rejects_with_reason(text, mentions):
    with pytest.raises(ValueError, match=re.escape(mentions)):
        relu_impls.parse_variant_spec(text)


def test_parse_variant_spec_takes_a_dict_and_another_registry():
    assert relu_impls.parse_variant_spec({"id": "int8", "params": {"zero_point": 3.0}}) == (
        "int8", {"zero_point": 3})
    leaky = relu_impls.variant("leaky")
    assert relu_impls.parse_variant_spec("leaky:alpha=0.5", {"leaky": leaky}) == (
        "leaky", {"alpha": 0.5})
    with pytest.raises(ValueError, match="unknown variant 'nn_relu'; accepted: leaky"):
        relu_impls.parse_variant_spec("nn_relu", {"leaky": leaky})
    with pytest.raises(TypeError, match="accepted: an id string"):
        relu_impls.parse_variant_spec(7)


def test_split_variant_list_respects_parentheses():
    assert relu_impls.split_variant_list("leaky(alpha=0.2,),nn_relu, ,int8:scale=1") == [
        "leaky(alpha=0.2,)",
        "nn_relu",
        "int8:scale=1",
    ]


def test_declared_conv_fusion_matches_what_grappler_does():
    from profiling.execution.fusion_blocks import fusion_report

    ids = [v.id for v in relu_impls.VARIANTS.values() if "float32" in v.dtypes]
    for vid in ids:
        needs_op(vid)
    report = fusion_report(ids, blocks=("conv",)).set_index("variant")
    for vid in ids:
        assert bool(report.loc[vid, "fused"]) == relu_impls.VARIANTS[vid].fuses_with_conv, vid


def test_maximum_is_the_guides_scalar_zero_form():
    """tf.maximum(x, 0): a Maximum op and no full-size zeros (Fill/ZerosLike/BroadcastTo)."""
    fn = relu_impls.get("maximum")
    graph = tf.function(fn).get_concrete_function(tf.TensorSpec([None, 64], tf.float32)).graph
    ops = {op.type for op in graph.get_operations()}
    assert "Maximum" in ops
    assert not ops & {"Fill", "ZerosLike", "BroadcastTo"}, ops
    np.testing.assert_array_equal(fn(tf.constant([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])


def test_adaptive_stats_slope_follows_the_fraction_of_negative_inputs():
    fn = relu_impls.get("adaptive_stats", alpha_max=0.4)
    x = tf.constant([[-4.0, -2.0, 1.0, 3.0]])  # half negative: alpha = 0.4 * 0.5 = 0.2
    np.testing.assert_allclose(fn(x), [[-0.8, -0.4, 1.0, 3.0]], rtol=1e-6)
    mostly_negative = tf.constant([-4.0, -2.0, -1.0, 3.0])  # alpha = 0.4 * 0.75 = 0.3
    np.testing.assert_allclose(fn(mostly_negative), [-1.2, -0.6, -0.3, 3.0], rtol=1e-6)
    assert fn.trainable_variables == ()  # set from the data, not learned
