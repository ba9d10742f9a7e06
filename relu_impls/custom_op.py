"""The compiled CustomRelu op: a C++ ReLU kernel bitwise equal to tf.nn.relu on CPU.

The library (csrc/, built by relu_impls.build) is loaded on first use and built first when the
cache has no current copy. Gradients are registered here so first and second derivatives match
tf.nn.relu's. XLA cannot compile custom ops: use `check_xla()` to get the reason as text.
"""

from __future__ import annotations

import threading
from types import ModuleType

import tensorflow as tf

from relu_impls.checked import call_checked

try:  # the generated wrappers' eager fast path, called directly to save ~1 us per call
    from tensorflow.python import pywrap_tfe
    from tensorflow.python.eager import context as _context
    from tensorflow.python.eager import core as _core
    from tensorflow.python.framework.ops import EagerTensor as _EagerTensor
except ImportError:  # pragma: no cover - private API moved; the generated wrappers still work
    pywrap_tfe = None
    _EagerTensor = None

ACCEPTED_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
_ACCEPTED_NAMES = ", ".join(d.name for d in ACCEPTED_DTYPES)


class XlaUnsupportedError(NotImplementedError):
    """CustomRelu was traced inside a jit_compile=True function; XLA has no kernel for it."""


def _in_xla_context() -> bool:
    if tf.executing_eagerly():
        return False
    try:  # internal, but the only trace-time signal of jit_compile=True
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


_XLA_MESSAGE = (
    "{op} cannot be compiled by XLA (jit_compile=True): it is a custom C++ op with "
    "no XLA kernel; call tf.nn.relu inside XLA-compiled functions instead"
)


class _Loader:
    """Builds (when stale) and loads the library once per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: ModuleType | None = None
        self._info: dict | None = None

    def load(self) -> ModuleType:
        if self._module is None:
            with self._lock:
                if self._module is None:
                    from relu_impls import build  # not at import: `python -m relu_impls.build`

                    info = build.build()
                    self._module = tf.load_op_library(info["path"])
                    self._info = info
        return self._module

    def loaded_info(self) -> dict | None:
        return self._info


_LOADER = _Loader()


def load() -> ModuleType:
    """Build the library if missing or stale, load it, return its op module; BuildError on failure."""
    return _LOADER.load()


def is_available() -> bool:
    """True if the library is loaded or a current build is in the cache (never builds)."""
    if _LOADER.loaded_info() is not None:
        return True
    from relu_impls import build

    try:
        cfg = build.config()
    except build.BuildError:
        return False
    if not build.is_current(cfg):
        return False
    try:
        load()
    except (build.BuildError, tf.errors.OpError):
        return False
    return True


def build_info() -> dict:
    """The library's build facts: path, built, gpu, compiler, compiler_version, cxxflags,
    ldflags, tf_version, source_hash, key, built_at (ISO 8601 UTC, None if not built)."""
    loaded = _LOADER.loaded_info()
    if loaded is not None:
        return dict(loaded)
    from relu_impls import build

    return build.read_info(build.config())


_F16, _BF16, _F32, _F64 = ACCEPTED_DTYPES


def _checked(op: str, x):
    """x as something with an accepted dtype; TypeError naming op, dtype and accepted dtypes."""
    dtype = getattr(x, "dtype", None)
    if not isinstance(dtype, tf.DType):
        x = tf.convert_to_tensor(x)
        dtype = x.dtype
    # DType objects are interned: identity tests are the cheapest check on the hot path.
    if dtype is not _F32 and dtype is not _F16 and dtype is not _BF16 and dtype is not _F64:
        raise TypeError(
            f"{op} does not accept dtype {dtype.name}; accepted dtypes: {_ACCEPTED_NAMES}"
        )
    return x


def _run(op: str, wrapper: str, name: str | None, *inputs):
    module = _LOADER._module or load()
    y = _fast(op, name, *inputs)
    if y is not _NOT_EAGER:
        return y
    if _in_xla_context():
        raise XlaUnsupportedError(_XLA_MESSAGE.format(op=op))
    return getattr(module, wrapper)(*inputs, name=name)


_NOT_EAGER = object()


def _fast(op: str, name: str | None, *inputs):
    """The op through TF's eager fast path, as TF's generated wrappers run it (eager, library
    loaded), or _NOT_EAGER. The op's type attribute rejects other dtypes in C++; the TypeError
    naming the accepted dtypes is raised on that rare path."""
    if pywrap_tfe is not None and _LOADER._module is not None:
        ctx = _context._context or _context.context()
        if ctx._thread_local_data.is_eager:
            try:
                return pywrap_tfe.TFE_Py_FastPathExecute(ctx, op, name, *inputs)
            except _core._NotOkStatusException as exc:
                for x in inputs:
                    _checked(op, x)
                raise _core._status_to_exception(exc) from None
            except _core._FallbackException:
                pass
    return _NOT_EAGER


def custom_relu(x, name: str | None = None) -> tf.Tensor:
    """max(x, 0) with tf.nn.relu's exact bits (NaN propagates); same shape and dtype as x.

    x: a float16, bfloat16, float32 or float64 tensor of any shape. TypeError for other dtypes.
    """
    # The fast path must cost no more than tf.nn.relu's own Python layers, or CustomRelu loses
    # on small tensors.
    y = _fast("CustomRelu", name, x)
    if y is not _NOT_EAGER:
        return y
    return _run("CustomRelu", "custom_relu", name, _checked("CustomRelu", x))


def checked_custom_relu(impl, accepted: frozenset, variant, x) -> tf.Tensor:
    """What `relu_impls.get("custom_op")` calls: CustomRelu's eager fast path in one Python
    frame (the generic check, then custom_relu, then _fast would be three). Same arguments as
    relu_impls.checked.call_checked, which handles every other case: a non-eager input, graph
    mode, and any failure of the fast path."""
    # _fast inlined on purpose: this is the public call's hot path. The dtype is checked in C++
    # (the op's T attribute allows exactly the variant's dtypes, which a test holds), so a wrong
    # dtype, like an unloaded library, fails here and call_checked raises the TypeError or
    # loads the library; checking it in Python first cost 3% of a 1e3 call.
    if type(x) is _EagerTensor:
        ctx = _context._context
        if ctx is not None and ctx._thread_local_data.is_eager:
            try:
                return pywrap_tfe.TFE_Py_FastPathExecute(ctx, "CustomRelu", None, x)
            except (_core._NotOkStatusException, _core._FallbackException):
                pass
    return call_checked(impl, accepted, variant, x)


def custom_relu_grad(gradients, features, name: str | None = None) -> tf.Tensor:
    """gradients * (features > 0), bitwise equal to TF's ReluGrad; exactly 0 passes nothing."""
    gradients = _checked("CustomReluGrad", gradients)
    features = _checked("CustomReluGrad", features)
    return _run("CustomReluGrad", "custom_relu_grad", name, gradients, features)


def bandwidth_probe(x, name: str | None = None) -> tf.Tensor:
    """A copy of x made through the same thread pool and split as CustomRelu (for peak GB/s).
    Same Python path as custom_relu, so at small sizes the roof pays the same dispatch."""
    y = _fast("BandwidthProbe", name, x)
    if y is not _NOT_EAGER:
        return y
    return _run("BandwidthProbe", "bandwidth_probe", name, _checked("BandwidthProbe", x))


@tf.RegisterGradient("CustomRelu")
def _custom_relu_gradient(op: tf.Operation, grad: tf.Tensor) -> tf.Tensor:
    # Fed the output like TF's _ReluGrad: exactly 0 passes no gradient either way.
    return custom_relu_grad(grad, op.outputs[0])


@tf.RegisterGradient("CustomReluGrad")
def _custom_relu_grad_gradient(op: tf.Operation, grad: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    # Linear in `gradients` with the same mask; piecewise constant in `features`.
    features = op.inputs[1]
    return custom_relu_grad(grad, features), tf.zeros_like(features)


def check_xla() -> str | None:
    """None if XLA can compile CustomRelu (never, today), else the one-line reason.

    Runs the raw op under jit_compile=True, bypassing custom_relu's own trace-time refusal,
    so the answer is XLA's, not ours.
    """
    module = load()

    @tf.function(jit_compile=True)
    def compiled(x: tf.Tensor) -> tf.Tensor:
        return module.custom_relu(x)

    try:
        compiled(tf.zeros([4]))
    except (
        tf.errors.InvalidArgumentError,
        tf.errors.NotFoundError,
        tf.errors.UnimplementedError,
    ) as exc:
        first = str(exc.message).strip().splitlines()[0] if exc.message else type(exc).__name__
        return (
            "CustomRelu cannot be compiled by XLA (jit_compile=True): it is a custom C++ "
            f"op with no XLA kernel; use tf.nn.relu under XLA. TensorFlow said: {first}"
        )
    return None
