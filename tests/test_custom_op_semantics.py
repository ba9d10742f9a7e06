"""CustomRelu and CustomReluGrad against tf.nn.relu / ReluGrad, bit for bit, on the real library.

tf.nn.relu's CPU kernel treats -0.0 and subnormals differently in its vectorised body and its
scalar tail (see csrc/relu_functor.h), so every special value is put at every position of
every short length.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from relu_impls import custom_op

DTYPES = ("float16", "bfloat16", "float32", "float64")
UINT = {"float16": tf.uint16, "bfloat16": tf.uint16, "float32": tf.uint32, "float64": tf.uint64}
NP_UINT = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.uint32, "float64": np.uint64}
# (sign bit, exponent mask, mantissa bits) per dtype
LAYOUT = {
    "float16": (15, 0x7C00, 10),
    "bfloat16": (15, 0x7F80, 7),
    "float32": (31, 0x7F800000, 23),
    "float64": (63, 0x7FF0000000000000, 52),
}
LENGTHS = [*range(0, 71), 1023, 1025, 100_003]


def special_bits(dtype: str) -> np.ndarray:
    """Bit patterns of ±0, ±quiet/signalling NaN, ±inf, ±1, ±subnormals, ±min normal, ±max."""
    sign_bit, exponent, mantissa = LAYOUT[dtype]
    sign = 1 << sign_bit
    quiet = 1 << (mantissa - 1)
    min_normal = 1 << mantissa
    positive = [
        0,
        exponent | quiet,
        exponent | quiet | 5,
        exponent | 1,
        exponent,
        (LAYOUT[dtype][1] >> 1) & exponent,
        1,
        min_normal - 1,
        min_normal,
        exponent - 1,
        min_normal * 3 + 7,
    ]
    bits = positive + [p | sign for p in positive]
    return np.array(bits, dtype=NP_UINT[dtype])


def from_bits(bits: np.ndarray, dtype: str) -> tf.Tensor:
    return tf.bitcast(tf.constant(bits, dtype=UINT[dtype]), getattr(tf, dtype))


def to_bits(x: tf.Tensor, dtype: str) -> np.ndarray:
    return tf.bitcast(x, UINT[dtype]).numpy()


def layouts(dtype: str, n: int, seed: int = 0):
    """Inputs of length n that put every special value at every position of short lengths."""
    specials = special_bits(dtype)
    rng = np.random.default_rng(seed + n)
    if n <= 70:
        for shift in range(len(specials)):
            yield np.resize(np.roll(specials, shift), n)
    else:
        random = to_bits(tf.cast(tf.constant(rng.normal(size=n) * 3), getattr(tf, dtype)), dtype)
        for start in (0, n - 3 * len(specials)):
            bits = random.copy()
            bits[start : start + 3 * len(specials)] = np.resize(specials, 3 * len(specials))
            yield bits
        yield random


@pytest.fixture(scope="module", autouse=True)
def library():
    return custom_op.load()


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_is_bitwise_equal_to_nn_relu(dtype):
    for n in LENGTHS:
        for bits in layouts(dtype, n):
            x = from_bits(bits, dtype)
            got, want = to_bits(custom_op.custom_relu(x), dtype), to_bits(tf.nn.relu(x), dtype)
            if not np.array_equal(got, want):
                i = int(np.nonzero(got != want)[0][0])
                pytest.fail(
                    f"{dtype} n={n} i={i}: input {bits[i]:#x} -> {got[i]:#x}, "
                    f"tf.nn.relu gives {want[i]:#x}"
                )


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_in_place_is_bitwise_equal(dtype):
    # Inside a graph the temporary `x + zero` has one consumer, so the kernel may write its
    # output over the input buffer (forward_input_or_allocate_output).
    def through(relu):
        return tf.function(lambda x, zero: relu(tf.identity(x) + zero))

    bits = np.resize(special_bits(dtype), 100_003)
    x, zero = from_bits(bits, dtype), tf.zeros([], getattr(tf, dtype))
    got = to_bits(through(custom_op.custom_relu)(x, zero), dtype)
    want = to_bits(through(tf.nn.relu)(x, zero), dtype)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_op_is_bitwise_equal_to_relu_grad(dtype):
    specials = special_bits(dtype)
    pairs = np.array([(g, f) for g in specials for f in specials], dtype=NP_UINT[dtype])
    for n in [*range(0, 40), 1025]:
        for shift in range(0, len(pairs), 23):
            chosen = np.resize(np.roll(pairs, shift, axis=0), (n, 2))
            g, f = from_bits(chosen[:, 0], dtype), from_bits(chosen[:, 1], dtype)
            got = to_bits(custom_op.custom_relu_grad(g, f), dtype)
            want = to_bits(tf.raw_ops.ReluGrad(gradients=g, features=f), dtype)
            if not np.array_equal(got, want):
                i = int(np.nonzero(got != want)[0][0])
                pytest.fail(
                    f"{dtype} n={n} i={i}: g={chosen[i, 0]:#x} f={chosen[i, 1]:#x} -> "
                    f"{got[i]:#x}, ReluGrad gives {want[i]:#x}"
                )


def _first_and_second_derivatives(fn, x):
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = fn(x) * x  # nonlinear in x so the second derivative is not identically 0
        dy = inner.gradient(y, x)
    return y, dy, outer.gradient(dy, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_match_nn_relu_to_second_order(dtype):
    values = [-2.0, -0.0, 0.0, 1e-3, 3.0, -1e-3, np.nan, np.inf, -np.inf]
    x = tf.cast(tf.constant(values * 5 + list(np.linspace(-4, 4, 97))), getattr(tf, dtype))
    ours = _first_and_second_derivatives(custom_op.custom_relu, x)
    theirs = _first_and_second_derivatives(tf.nn.relu, x)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(to_bits(a, dtype), to_bits(b, dtype))


def test_gradient_at_exactly_zero_is_zero():
    x = tf.constant([0.0, -0.0, 1.0, -1.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = custom_op.custom_relu(x)
    assert tape.gradient(y, x).numpy().tolist() == [0.0, 0.0, 1.0, 0.0]


def test_gradient_of_gradient_wrt_features_is_zero():
    g = tf.constant([1.0, 2.0, 3.0])
    f = tf.constant([-1.0, 0.5, 2.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([g, f])
        out = custom_op.custom_relu_grad(g, f)
    assert tape.gradient(out, f).numpy().tolist() == [0.0, 0.0, 0.0]
    assert tape.gradient(out, g).numpy().tolist() == [0.0, 1.0, 1.0]


def test_numeric_gradient_away_from_the_kink():
    x = tf.constant(np.concatenate([np.linspace(-2, -0.1, 20), np.linspace(0.1, 2, 20)]))
    theoretical, numeric = tf.test.compute_gradient(custom_op.custom_relu, [x])
    np.testing.assert_allclose(theoretical[0], numeric[0], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_tensors(dtype):
    for shape in [(0,), (3, 0), (0, 5, 2)]:
        x = tf.zeros(shape, getattr(tf, dtype))
        assert custom_op.custom_relu(x).shape == shape
        assert custom_op.custom_relu_grad(x, x).shape == shape
        assert custom_op.bandwidth_probe(x).shape == shape


def test_shape_inference_with_unknown_dims():
    @tf.function(input_signature=[tf.TensorSpec([None, 3, None], tf.float32)])
    def forward_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = custom_op.custom_relu(x)
        assert y.shape.as_list() == [None, 3, None]
        return y, tape.gradient(y, x)

    y, dx = forward_and_grad(tf.ones([2, 3, 4]))
    assert y.shape == (2, 3, 4) and dx.shape == (2, 3, 4)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float64)])
    def unknown_rank(x):
        y = custom_op.custom_relu(x)
        assert y.shape.rank is None
        return y

    assert unknown_rank(tf.constant([[-1.0, 2.0]], tf.float64)).numpy().tolist() == [[0.0, 2.0]]


def test_grad_op_rejects_mismatched_shapes():
    with pytest.raises(tf.errors.InvalidArgumentError, match="CustomReluGrad"):
        custom_op.custom_relu_grad(tf.ones([3]), tf.ones([4]))


@pytest.mark.parametrize("dtype", [tf.int32, tf.int8, tf.bool, tf.complex64, tf.string])
def test_non_float_input_is_refused_with_a_clear_type_error(dtype):
    x = tf.zeros([3], dtype) if dtype != tf.string else tf.constant(["a"])
    with pytest.raises(
        TypeError,
        match=rf"CustomRelu does not accept dtype {dtype.name}; "
        r"accepted dtypes: float16, bfloat16, float32, float64",
    ):
        custom_op.custom_relu(x)


def test_python_values_are_converted():
    assert custom_op.custom_relu([-1.0, 2.0]).numpy().tolist() == [0.0, 2.0]
    with pytest.raises(TypeError, match="int32"):
        custom_op.custom_relu([1, 2])


STREAMING_BYTES = 16 << 20  # outputs from this size on use non-temporal stores (relu_kernels.cc)


def streaming_length(dtype: str) -> int:
    return STREAMING_BYTES // tf.as_dtype(getattr(tf, dtype)).size + 1003


@pytest.mark.parametrize("dtype", DTYPES)
def test_bandwidth_probe_copies_every_bit(dtype):
    # 3e6 + 1 uses the thread pool with ordinary stores; the second length streams its output.
    for n in (3_000_001, streaming_length(dtype)):
        bits = np.resize(special_bits(dtype), n)
        x = from_bits(bits, dtype)
        assert np.array_equal(to_bits(custom_op.bandwidth_probe(x), dtype), bits)


@pytest.mark.parametrize("dtype", DTYPES)
def test_streaming_path_is_bitwise_equal(dtype):
    bits = np.resize(special_bits(dtype), streaming_length(dtype))
    x = from_bits(bits, dtype)
    assert np.array_equal(to_bits(custom_op.custom_relu(x), dtype), to_bits(tf.nn.relu(x), dtype))


def test_large_tensor_split_across_threads_matches():
    x = tf.random.stateless_normal([5_000_003], seed=(3, 4))
    assert np.array_equal(
        to_bits(custom_op.custom_relu(x), "float32"), to_bits(tf.nn.relu(x), "float32")
    )


def test_xla_refusal_is_clear():
    compiled = tf.function(jit_compile=True)(custom_op.custom_relu)
    with pytest.raises(Exception, match="cannot be compiled by XLA"):
        compiled(tf.ones([3]))
    reason = custom_op.check_xla()
    assert reason is not None and "CustomRelu" in reason and "XLA" in reason


def test_build_info_describes_the_loaded_library():
    info = custom_op.build_info()
    assert info["built"] is True and info["gpu"] is False
    assert info["path"].endswith("custom_relu.so")
    assert info["tf_version"] == tf.__version__
    assert "-O3" in info["cxxflags"] and any("-l" in f for f in info["ldflags"])
    for key in ("compiler", "compiler_version", "source_hash", "built_at"):
        assert info[key]
    assert custom_op.is_available()
