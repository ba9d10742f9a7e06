"""The variant registry: every common way of writing ReLU in TensorFlow, with declared semantics.

Each `Variant` says what it computes, which dtypes it accepts, its parameters and their valid
ranges, what it does at NaN and at the kink, and whether XLA can compile it. `get(id, **params)`
validates everything up front and returns a callable taking one tensor.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

from relu_impls import custom_op  # the loader only: the library loads on first call
from relu_impls.checked import call_checked

FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Param:
    """A numeric parameter of a variant and its valid range (bounds inclusive unless stated)."""

    name: str
    default: float
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""
    integer: bool = False
    exclusive_minimum: bool = False

    def accepted(self) -> str:
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        left = "(" if self.exclusive_minimum or self.minimum is None else "["
        kind = "an integer" if self.integer else "a finite number"
        return f"{kind} in {left}{lo}, {hi}]"

    def validate(self, variant_id: str, value: Any) -> float | int:
        """Return `value` checked against this parameter; raise TypeError/ValueError otherwise."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(
                f"variant '{variant_id}': parameter {self.name}={value!r} has type "
                f"{type(value).__name__}; accepted: {self.accepted()}"
            )
        if self.integer and not float(value).is_integer():
            raise ValueError(
                f"variant '{variant_id}': parameter {self.name}={value!r}; accepted: {self.accepted()}"
            )
        too_low = self.minimum is not None and (
            value <= self.minimum if self.exclusive_minimum else value < self.minimum
        )
        too_high = self.maximum is not None and value > self.maximum
        if not math.isfinite(value) or too_low or too_high:
            raise ValueError(
                f"variant '{variant_id}': parameter {self.name}={value!r} is out of range; "
                f"accepted: {self.accepted()}"
            )
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Variant:
    """One implementation of ReLU and its declared semantics.

    `factory(**params)` returns the raw implementation; use `make`/`relu_impls.get`, which
    validate parameters and the input dtype. `fuses_with_conv`: in a float32 `tf.function`,
    Grappler folds the whole activation into the preceding Conv2D/MatMul + BiasAdd kernel
    (checked against the profiler's fusion report by the tests).
    """

    id: str
    name: str
    description: str
    factory: Callable[..., Callable[[tf.Tensor], tf.Tensor]]
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    params: Mapping[str, Param] = field(default_factory=dict)
    grad_at_zero: float | None = 0.0
    nan_semantics: str = "propagate"
    xla_compilable: bool = True
    needs_build: bool = False
    fuses_with_conv: bool = False
    differentiable: bool = True
    # (impl, accepted dtype enums, variant, x) -> y: a variant's own dtype-checking call, used
    # by `make` instead of `call_checked` where one frame less matters (custom_op at 1e3).
    checked_call: Callable[..., tf.Tensor] | None = None

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, float | int]:
        """Defaults filled in, each value checked; unknown names raise ValueError."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            accepted = ", ".join(self.params) or "none"
            raise ValueError(
                f"variant '{self.id}': unknown parameter(s) {', '.join(unknown)}; "
                f"accepted: {accepted}"
            )
        values = {name: p.default for name, p in self.params.items()}
        values.update({k: self.params[k].validate(self.id, v) for k, v in params.items()})
        return values

    def check_dtype(self, dtype: tf.DType | str) -> None:
        """Raise TypeError unless this variant accepts `dtype` (no silent casts)."""
        name = tf.as_dtype(dtype).name
        if name not in self.dtypes:
            raise TypeError(
                f"variant '{self.id}' does not support dtype {name}; "
                f"accepted: {', '.join(self.dtypes)}"
            )

    def make(self, **params: Any) -> VariantFn:
        """A validated callable: tensor in, activation out."""
        values = self.validate_params(params)
        return VariantFn(self, values, self.factory(**values))

    def label(self, params: Mapping[str, Any] | None = None) -> str:
        """Display label such as `leaky(alpha=0.2)`; defaults are left out."""
        shown = {
            k: v
            for k, v in (params or {}).items()
            if k in self.params and v != self.params[k].default
        }
        if not shown:
            return self.id
        return f"{self.id}({', '.join(f'{k}={v:g}' for k, v in shown.items())})"


class VariantFn(functools.partial):
    """Callable returned by `relu_impls.get`: checks the dtype, then applies the variant.

    A functools.partial underneath, so a call costs one C-level dispatch and the check, not a
    Python method call on top (the wrapper adds well under a microsecond).
    """

    def __new__(cls, variant: Variant, params: dict[str, float | int], impl: Callable
                ) -> VariantFn:
        accepted = frozenset(tf.as_dtype(name).as_datatype_enum for name in variant.dtypes)
        self = super().__new__(cls, variant.checked_call or call_checked, impl, accepted,
                               variant)
        self.variant = variant
        self.params = params
        self.__name__ = variant.id
        return self

    @property
    def impl(self) -> Callable:
        """The variant's own callable, without the dtype check (what the profiler times)."""
        return self.args[0]

    @property
    def trainable_variables(self) -> tuple[tf.Variable, ...]:
        return tuple(getattr(self.impl, "trainable_variables", ()))

    def __repr__(self) -> str:
        return f"<relu_impls {self.variant.label(self.params)}>"


# --- implementations -------------------------------------------------------------------------


def _where() -> Callable:
    return lambda x: tf.where(x > 0, x, tf.zeros_like(x))


def _maximum() -> Callable:
    # The guide's tf.maximum(x, 0): a scalar zero in x's dtype, broadcast by the kernel; no
    # full-size zeros tensor (no Fill/ZerosLike in the graph).
    return lambda x: tf.maximum(x, tf.constant(0, x.dtype))


def _nn_relu() -> Callable:
    return tf.nn.relu


def _keras() -> Callable:
    import keras

    layers: dict[str, keras.layers.Layer] = {}

    def apply(x: tf.Tensor) -> tf.Tensor:
        # One layer per dtype: a Keras layer casts inputs to its own compute dtype otherwise.
        name = x.dtype.name
        if name not in layers:
            layers[name] = keras.layers.Activation("relu", dtype=name)
        return layers[name](x)

    return apply


def _custom_op() -> Callable:
    return custom_op.custom_relu


def _mixed_precision() -> Callable:
    return lambda x: tf.cast(tf.nn.relu(tf.cast(x, tf.float32)), x.dtype)


def _stable(epsilon: float) -> Callable:
    return lambda x: tf.nn.relu(x) + tf.constant(epsilon, x.dtype)


def _clipped(clip: float) -> Callable:
    return lambda x: tf.minimum(tf.nn.relu(x), tf.constant(clip, x.dtype))


def _leaky(alpha: float) -> Callable:
    return lambda x: tf.where(x > 0, x, tf.constant(alpha, x.dtype) * x)


def prelu(x: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """PReLU: relu(x) - alpha * relu(-x), alpha broadcast over the last (channel) axis."""
    return tf.nn.relu(x) - alpha * tf.nn.relu(-x)


class AdaptiveRelu(tf.Module):
    """PReLU with one learnable negative slope per channel (last axis), created on first call."""

    def __init__(self, alpha_init: float):
        super().__init__(name="adaptive_relu")
        self.alpha_init = alpha_init
        self.alpha: tf.Variable | None = None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        channels = x.shape[-1] if x.shape.rank else 1
        if self.alpha is None:
            self.alpha = tf.Variable(
                tf.fill([channels], tf.constant(self.alpha_init, x.dtype)), name="alpha"
            )
        alpha = tf.cast(self.alpha, x.dtype) if self.alpha.dtype != x.dtype else self.alpha
        return prelu(x, alpha)


def negative_fraction_slope(x: tf.Tensor, alpha_max: float) -> tf.Tensor:
    """The data-driven slope: alpha = alpha_max * P(x < 0), P the fraction of the batch below 0.

    Counted in float32 (exact up to 2**24 elements per step, then rounded) and cast to x's dtype;
    NaN counts as not negative. A scalar for the whole tensor, recomputed on every call.
    """
    negative = tf.reduce_mean(tf.cast(x < 0, tf.float32))
    return tf.cast(tf.constant(alpha_max, tf.float32) * negative, x.dtype)


def _adaptive_stats(alpha_max: float) -> Callable:
    # Not learned: alpha has no gradient (a count), so backprop sees a leaky ReLU with this slope.
    return lambda x: prelu(x, negative_fraction_slope(x, alpha_max))


def int8_relu(q: tf.Tensor, zero_point: int) -> tf.Tensor:
    """ReLU in the quantized domain: real 0 is `zero_point`, so relu is max(q, zero_point)."""
    return tf.maximum(q, tf.constant(zero_point, tf.int8))


def _int8(scale: float, zero_point: int) -> Callable:
    del scale  # max(q, zp) is exact for any positive scale; the scale matters to the reference
    return lambda q: int8_relu(q, zero_point)


_REGISTRY: tuple[Variant, ...] = (
    Variant(
        "where",
        "tf.where (teaching)",
        "tf.where(x > 0, x, 0): readable, maps NaN to 0",
        _where,
        nan_semantics="zero",
        grad_at_zero=0.0,
    ),
    Variant(
        "maximum",
        "tf.maximum",
        "tf.maximum(x, 0): NaN propagates, gradient 1 at exactly 0",
        _maximum,
        grad_at_zero=1.0,
    ),
    Variant(
        "nn_relu",
        "tf.nn.relu",
        "tf.nn.relu: TensorFlow's fused Relu kernel, the baseline",
        _nn_relu,
        fuses_with_conv=True,
    ),
    Variant(
        "keras",
        "Keras Activation",
        'keras.layers.Activation("relu") in the input dtype',
        _keras,
        fuses_with_conv=True,
    ),
    Variant(
        "custom_op",
        "CustomRelu op",
        "our compiled C++/CUDA CustomRelu op (csrc/), drop-in for tf.nn.relu",
        _custom_op,
        xla_compilable=False,
        needs_build=True,
        checked_call=custom_op.checked_custom_relu,
    ),
    Variant(
        "mixed_precision",
        "Mixed precision",
        "cast to float32, tf.nn.relu, cast back to the input dtype",
        _mixed_precision,
        fuses_with_conv=True,
        dtypes=("float16", "bfloat16", "float32"),
    ),
    Variant(
        "stable",
        "Stable (+epsilon)",
        "tf.nn.relu(x) + epsilon: never exactly zero",
        _stable,
        params={"epsilon": Param("epsilon", 1e-7, 0.0, 1.0, "added to every output")},
    ),
    Variant(
        "clipped",
        "Clipped",
        "min(relu(x), clip); relu6 is clip=6",
        _clipped,
        params={"clip": Param("clip", 5.0, 0.0, None, "upper bound", exclusive_minimum=True)},
    ),
    Variant(
        "leaky",
        "Leaky",
        "tf.where(x > 0, x, alpha * x)",
        _leaky,
        grad_at_zero=0.01,
        params={"alpha": Param("alpha", 0.01, 0.0, 1.0, "slope for x <= 0")},
    ),
    Variant(
        "adaptive",
        "Adaptive (PReLU)",
        "PReLU: learnable per-channel negative slope in a tf.Variable",
        AdaptiveRelu,
        params={"alpha_init": Param("alpha_init", 0.25, 0.0, 1.0, "initial slope for x < 0")},
    ),
    Variant(
        "adaptive_stats",
        "Adaptive (data-driven)",
        "leaky with slope alpha_max * (fraction of the batch below 0), recomputed per call",
        _adaptive_stats,
        params={"alpha_max": Param("alpha_max", 0.2, 0.0, 1.0,
                                   "slope when every input is negative")},
    ),
    Variant(
        "int8",
        "int8 quantized",
        "max(q, zero_point) on int8 with scale and zero point",
        _int8,
        dtypes=("int8",),
        grad_at_zero=None,
        nan_semantics="n/a",
        differentiable=False,
        params={
            "scale": Param(
                "scale", 0.05, 0.0, None, "real value of one step", exclusive_minimum=True
            ),
            "zero_point": Param(
                "zero_point", 0, -128, 127, "quantized value of real 0", integer=True
            ),
        },
    ),
)

VARIANTS: dict[str, Variant] = {v.id: v for v in _REGISTRY}


def variant(variant_id: str) -> Variant:
    """The registered Variant; ValueError naming the accepted ids otherwise."""
    try:
        return VARIANTS[variant_id]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown variant {variant_id!r}; accepted: {', '.join(VARIANTS)}"
        ) from None


def get(variant_id: str, **params: Any) -> VariantFn:
    """A callable applying variant `variant_id` with `params` (defaults for the rest)."""
    return variant(variant_id).make(**params)


def check_dtype(variant_id: str, dtype: tf.DType | str) -> None:
    """Raise TypeError unless variant `variant_id` accepts `dtype`."""
    variant(variant_id).check_dtype(dtype)


def split_variant_list(text: str) -> list[str]:
    """Split a comma list of variant specs on commas outside parentheses.

    `"leaky(alpha=0.2, ),nn_relu"` -> `["leaky(alpha=0.2, )", "nn_relu"]`; empty items dropped.
    """
    items, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    return [item.strip() for item in (*items, current) if item.strip()]


def parse_variant_text(text: str) -> tuple[str, dict[str, float]]:
    """Syntax only: `"leaky"`, `"leaky:alpha=0.2"` or `"leaky(alpha=0.2)"` -> `("leaky", {"alpha": 0.2})`.

    ValueError when an item is not `name=number`; the id and values are not checked here.
    """
    text = text.strip()
    if text.endswith(")") and "(" in text:
        vid, _, inner = text[:-1].partition("(")
        items = inner.split(",")
    else:
        vid, _, inner = text.partition(":")
        items = inner.split(":")
    params: dict[str, float] = {}
    for item in filter(None, (i.strip() for i in items)):
        name, eq, value = item.partition("=")
        try:
            params[name.strip()] = float(value) if eq else math.nan
        except ValueError:
            eq = ""
        if not eq:
            raise ValueError(
                f"variant spec {text!r}: {item!r} is not name=number; "
                "accepted: id, id:name=value[:name=value] or id(name=value, ...)"
            )
    return vid.strip(), params


def parse_variant_spec(spec: str | Mapping[str, Any], registry: Mapping[str, Variant] | None = None
                       ) -> tuple[str, dict[str, float | int]]:
    """The one variant parser: `"leaky:alpha=0.2"`, `"leaky(alpha=0.2)"` (see
    `parse_variant_text`) or `{"id": "leaky", "params": {"alpha": 0.2}}` -> `("leaky",
    {"alpha": 0.2})`, validated against `registry` (default `VARIANTS`): only the parameters
    given are returned, integers where the parameter is an integer; ValueError/TypeError
    otherwise."""
    if isinstance(spec, str):
        vid, raw = parse_variant_text(spec)
    elif isinstance(spec, Mapping) and isinstance(spec.get("id"), str):
        vid, raw = spec["id"], dict(spec.get("params") or {})
    else:
        raise TypeError(f"variant {spec!r}; accepted: an id string or an {{'id', 'params'}} dict")
    registry = VARIANTS if registry is None else registry
    if vid not in registry:
        raise ValueError(f"unknown variant {vid!r}; accepted: {', '.join(registry)}")
    found = registry[vid]
    params = {
        name: int(v) if isinstance(v, float) and v.is_integer() and name in found.params
        and found.params[name].integer else v
        for name, v in raw.items()
    }
    return found.id, {k: v for k, v in found.validate_params(params).items() if k in params}
