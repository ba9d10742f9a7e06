"""What-if rewrites of a Keras model: each a clone with the same weights, one change made.

- `fold_bn`: every inference-mode BatchNormalization that directly follows a Conv2D,
  DepthwiseConv2D or Dense (and is its output's only reader) is folded into that layer's kernel
  and bias, and replaced by a pass-through layer that adds no op, so Conv + BiasAdd + activation
  can fuse. Inference only: training needs the batch statistics.
- `swap`: every activation of one kind replaced by one implementation (a `relu_impls` variant
  for the ReLU family; `gelu=tanh` and `silu=x_sigmoid` defined here).
- `mixed_bfloat16`: every layer under Keras' mixed_bfloat16 policy (float32 weights).
XLA is not a rewrite of the model but of the step (`jit_compile=True`); the runner applies it.

A rewrite that cannot apply raises `RewriteError` with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from profiling.models.walk import flat_layers, layer_kind, parents

FOLDABLE = ("Conv2D", "DepthwiseConv2D", "Dense")
SELF_DEFINED_SWAPS = {("gelu", "tanh"), ("silu", "x_sigmoid"), ("gelu_tanh", "exact")}


class RewriteError(ValueError):
    """A rewrite that cannot apply to this model; str() is one line."""


@dataclass
class Rewritten:
    """A rewritten model and what the rewrite did (`changed`: the layers it touched)."""

    name: str
    model: Any
    changed: list[str] = field(default_factory=list)
    jit_compile: bool = False


def parse_rewrite(text: str) -> tuple[str, dict[str, str]]:
    """'fold_bn' -> ('fold_bn', {}); 'swap:relu=custom_op' -> ('swap', {'kind': 'relu',
    'variant': 'custom_op'}). RewriteError names what is wrong."""
    text = text.strip()
    if text in ("fold_bn", "xla", "mixed_bfloat16"):
        return text, {}
    if text.startswith("swap:"):
        kind, sep, variant = text[len("swap:"):].partition("=")
        if not sep or not kind.strip() or not variant.strip():
            raise RewriteError(f"bad rewrite {text!r}: write swap:KIND=VARIANT, "
                               "e.g. swap:relu=custom_op")
        return "swap", {"kind": kind.strip(), "variant": variant.strip()}
    raise RewriteError(f"unknown rewrite {text!r}: choose fold_bn, swap:KIND=VARIANT, xla or "
                       "mixed_bfloat16")


def _clone(model: Any, replace: Callable[[Any], Any | None]) -> Any:
    """A clone of `model` in which `replace(layer)` (when not None) stands for a layer; every
    other layer is cloned from its config. Weights are copied afterwards by name."""
    if type(model).__name__ not in ("Functional", "Sequential"):
        raise RewriteError(f"a subclassed model ({type(model).__name__}) cannot be cloned layer by "
                           "layer; rewrites need a functional or Sequential model")

    def clone(layer: Any) -> Any:
        new = replace(layer)
        if new is not None:
            return new
        return layer.__class__.from_config(layer.get_config())

    try:
        out = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except Exception as e:  # Keras raises many types for a layer it cannot re-create
        raise RewriteError(f"could not clone the model: {type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None
    return out


def _copy_weights(source: Any, target: Any, skip: set[str] = frozenset()) -> None:
    by_name = {layer.name: layer for layer in flat_layers(source)}
    for layer in flat_layers(target):
        src = by_name.get(layer.name)
        if src is None or layer.name in skip or not src.weights:
            continue
        layer.set_weights(src.get_weights())


def _single_reader(layer: Any, model_layers: list[Any]) -> bool:
    readers = [lyr for lyr in model_layers if any(p is layer for p in parents(lyr))]
    return len(readers) == 1


@keras.saving.register_keras_serializable(package="relu_lab")
class FoldedAway(keras.layers.Layer):
    """Stands where a folded BatchNormalization was: passes its input on, adds no op."""

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        return inputs


def fold_plan(model: Any) -> dict[str, str]:
    """{batchnorm layer name: the layer it folds into} for every foldable pair."""
    layers = flat_layers(model)
    plan = {}
    for bn in layers:
        if type(bn).__name__ != "BatchNormalization":
            continue
        feeding = parents(bn)
        if len(feeding) != 1 or type(feeding[0]).__name__ not in FOLDABLE:
            continue
        conv = feeding[0]
        axis = bn.axis if isinstance(bn.axis, int) else (bn.axis[0] if len(bn.axis) == 1 else None)
        if axis not in (-1, len(conv.output.shape) - 1):
            continue  # folding needs the statistics on the channel axis the kernel writes
        if getattr(conv, "activation", None) is not None and \
                getattr(conv.activation, "__name__", "linear") != "linear":
            continue  # BN after a non-linearity cannot move into the kernel
        if not _single_reader(conv, layers):
            continue
        plan[bn.name] = conv.name
    return plan


def folded_weights(conv: Any, bn: Any) -> list[np.ndarray]:
    """[kernel, bias] of `conv` with inference-mode `bn` folded in:
    y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta."""
    weights = conv.get_weights()
    kernel = weights[0]
    bias = weights[1] if conv.use_bias else np.zeros(_out_channels(conv, kernel), kernel.dtype)
    gamma, beta, mean, var = _bn_parameters(bn, len(bias))
    scale = gamma / np.sqrt(var + bn.epsilon)
    if type(conv).__name__ == "DepthwiseConv2D":  # kernel (kh, kw, in, multiplier)
        k = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:  # Conv2D (kh, kw, in, out), Dense (in, out): output channels last
        k = kernel * scale
    return [k.astype(kernel.dtype), ((bias - mean) * scale + beta).astype(kernel.dtype)]


def _out_channels(conv: Any, kernel: np.ndarray) -> int:
    if type(conv).__name__ == "DepthwiseConv2D":
        return kernel.shape[2] * kernel.shape[3]
    return kernel.shape[-1]


def _bn_parameters(bn: Any, n: int) -> tuple[np.ndarray, ...]:
    gamma = bn.gamma.numpy() if bn.scale else np.ones(n, np.float32)
    beta = bn.beta.numpy() if bn.center else np.zeros(n, np.float32)
    return gamma, beta, bn.moving_mean.numpy(), bn.moving_variance.numpy()


def fold_bn(model: Any) -> Rewritten:
    """The model with every foldable BatchNormalization folded into its Conv/Dense."""
    plan = fold_plan(model)
    if not plan:
        raise RewriteError("no BatchNormalization follows a Conv2D, DepthwiseConv2D or Dense "
                           "directly: nothing to fold")
    convs = set(plan.values())

    def replace(layer: Any) -> Any | None:
        if layer.name in plan:
            return FoldedAway(name=layer.name)
        if layer.name in convs:
            cfg = layer.get_config()
            cfg["use_bias"] = True
            return layer.__class__.from_config(cfg)
        return None

    clone = _clone(model, replace)
    _copy_weights(model, clone, skip=convs | set(plan))
    source = {layer.name: layer for layer in flat_layers(model)}
    target = {layer.name: layer for layer in flat_layers(clone)}
    for bn_name, conv_name in plan.items():
        target[conv_name].set_weights(folded_weights(source[conv_name], source[bn_name]))
    return Rewritten("fold_bn", clone, changed=sorted(convs | set(plan)))


def swap_function(kind: str, variant: str) -> Callable[[Any], Any]:
    """The function that computes activation `kind` as `variant` (RewriteError if unknown)."""
    import tensorflow as tf

    if (kind, variant) == ("gelu", "tanh"):
        return lambda x: keras.activations.gelu(x, approximate=True)
    if (kind, variant) == ("gelu_tanh", "exact"):
        return lambda x: keras.activations.gelu(x, approximate=False)
    if (kind, variant) == ("silu", "x_sigmoid"):
        return lambda x: x * tf.sigmoid(x)
    if kind not in ("relu", "relu6"):
        raise RewriteError(f"no implementation {variant!r} for {kind}: ReLU-family kinds take a "
                           "relu_impls variant; gelu=tanh and silu=x_sigmoid are defined")
    import relu_impls

    try:
        vid, params = relu_impls.parse_variant_spec(variant)
        fn = relu_impls.get(vid, **params)
    except (KeyError, ValueError, TypeError) as e:
        raise RewriteError(f"swap {kind}={variant}: {str(e).splitlines()[0]}") from None
    return fn


@keras.saving.register_keras_serializable(package="relu_lab")
class SwappedActivation(keras.layers.Layer):
    """An activation layer computing `kind` as `implementation` (what `swap` puts in place)."""

    def __init__(self, kind: str, implementation: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.implementation = kind, implementation
        self._fn = swap_function(kind, implementation)

    def call(self, inputs: Any) -> Any:
        return self._fn(inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind, "implementation": self.implementation}


def swap(model: Any, kind: str, variant: str) -> Rewritten:
    """The model with every activation of `kind` computed by `variant`."""
    swap_function(kind, variant)  # refuse an unknown pair before cloning
    hits: list[str] = []
    moved: list[Any] = []

    def replace(layer: Any) -> Any | None:
        k, how = layer_kind(layer)
        if k != kind:
            return None
        hits.append(layer.name)
        if how == "activation=":  # keep the layer, swap its activation function
            new = layer.__class__.from_config(layer.get_config())
            moved.append(new)
            return new
        return SwappedActivation(kind, variant, name=layer.name)

    clone = _clone(model, replace)
    if not hits:
        raise RewriteError(f"the model has no {kind} activation to swap")
    for layer in moved:
        layer.activation = swap_function(kind, variant)
        layer.swapped_activation = (kind, variant)
    _copy_weights(model, clone)
    return Rewritten(f"swap:{kind}={variant}", clone, changed=hits)


def mixed_bfloat16(model: Any) -> Rewritten:
    """The model with every layer under the mixed_bfloat16 policy (weights stay float32)."""
    changed: list[str] = []

    def replace(layer: Any) -> Any | None:
        if type(layer).__name__ == "InputLayer":
            return None
        cfg = layer.get_config()
        cfg["dtype"] = "mixed_bfloat16"
        changed.append(layer.name)
        return layer.__class__.from_config(cfg)

    clone = _clone(model, replace)
    _copy_weights(model, clone)
    return Rewritten("mixed_bfloat16", clone, changed=changed)


def rewrite(model: Any, text: str) -> Rewritten:
    """Apply one rewrite named as on the command line (RewriteError when it cannot)."""
    name, args = parse_rewrite(text)
    if name == "fold_bn":
        return fold_bn(model)
    if name == "swap":
        return swap(model, args["kind"], args["variant"])
    if name == "mixed_bfloat16":
        return mixed_bfloat16(model)
    return Rewritten("xla", model, jit_compile=True)
