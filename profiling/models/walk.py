"""The model's own ground truth: every layer that applies an activation, and what feeds it.

A Keras layer applies an activation in one of three ways: an `activation=` argument (Conv2D,
Dense…: the activation runs on the layer's own output, after its bias), an activation layer
(`Activation("relu")`, `ReLU`, `LeakyReLU`, `PReLU`, `ELU`), or code Keras cannot see (a Lambda,
a custom layer). The walk reports the first two with their kind, and a Lambda as kind "unknown".
Nested models (a Sequential inside a functional model) are walked too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Keras activation function names -> the audit's kinds (profiling.analysis.activations).
KIND_OF_FUNCTION = {
    "relu": "relu", "relu6": "relu6", "leaky_relu": "leaky_relu", "elu": "elu", "selu": "selu",
    "gelu": "gelu", "silu": "silu", "swish": "silu", "hard_silu": "hard_swish",
    "hard_swish": "hard_swish", "hard_sigmoid": "hard_sigmoid", "mish": "mish",
    "sigmoid": "sigmoid", "tanh": "tanh", "softplus": "softplus", "softsign": "softsign",
}
# Not activations in the audit's sense: the identity, and heads that normalise a distribution.
NOT_ACTIVATIONS = {"linear", "softmax", "log_softmax", "exponential"}
NORMALIZATION_TYPES = {"BatchNormalization"}
BIAS_FREE_ACTIVATION_LAYERS = {"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Lambda"}
FUSABLE_PRODUCERS = {"Conv2D", "Conv1D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Dense"}


@dataclass(frozen=True)
class ActivationLayer:
    """One layer that applies an activation.

    layer: the layer's name (its scope in the trace, under the model's name); kind: the audit's
    kind, "unknown" for a Lambda; how: "activation=" (the layer's own argument) or the layer's
    class; producer: the layer whose output it activates (itself for "activation="), and
    producer_type its class; bn_between: a BatchNormalization sits between the producer's
    linear op and this activation; has_bias: the producer adds a bias (what Grappler's
    Conv/MatMul + BiasAdd + activation fusion needs).
    """

    layer: str
    kind: str
    how: str
    producer: str | None
    producer_type: str | None
    bn_between: bool
    has_bias: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def function_kind(fn: Any) -> str | None:
    """The kind of a Keras activation function (None for the identity and softmax heads)."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    name = name.lower()
    if name in NOT_ACTIVATIONS:
        return None
    if name == "gelu" and getattr(fn, "keywords", {}).get("approximate"):
        return "gelu_tanh"
    return KIND_OF_FUNCTION.get(name, "unknown")


def layer_kind(layer: Any) -> tuple[str | None, str]:
    """(kind, how) of the activation a layer applies; kind None when it applies none."""
    cls = type(layer).__name__
    if cls == "SwappedActivation":  # profiling.models.rewrites.swap's stand-in
        return layer.kind, f"swapped to {layer.implementation}"
    if cls == "ReluActivation":  # relu_impls.keras_layer: a ReLU variant as a layer
        return "relu", f"ReluActivation({layer.variant_id})"
    if cls == "ReLU":
        cfg = layer.get_config()
        if cfg.get("negative_slope"):
            return "leaky_relu", cls
        max_value = cfg.get("max_value")
        return ("relu6" if max_value == 6 else "relu" if max_value is None else "clipped_relu",
                cls)
    if cls == "LeakyReLU":
        return "leaky_relu", cls
    if cls == "PReLU":
        return "prelu", cls
    if cls == "ELU":
        return "elu", cls
    if cls == "Lambda":
        return "unknown", cls
    if cls == "Activation":
        return function_kind(layer.activation), cls
    swapped = getattr(layer, "swapped_activation", None)  # set by rewrites.swap
    if swapped:
        return swapped[0], f"activation= swapped to {swapped[1]}"
    fn = getattr(layer, "activation", None)
    if fn is not None and callable(fn):
        return function_kind(fn), "activation="
    return None, cls


def flat_layers(model: Any) -> list[Any]:
    """Every layer of a model, nested models replaced by their layers, in model order."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and type(layer).__name__ in ("Functional", "Sequential",
                                                                    "Model"):
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def parents(layer: Any) -> list[Any]:
    """The layers feeding `layer` in its (first) call in the graph."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    return [p.operation for p in nodes[0].parent_nodes]


def _producer(layer: Any, seen: int = 0) -> tuple[Any | None, bool]:
    """(the layer whose linear output `layer` activates, whether a BatchNorm sits between)."""
    bn = False
    current = layer
    for _ in range(8):  # a few pass-through layers at most (BN, padding, dropout)
        feeding = parents(current)
        if len(feeding) != 1:
            return (feeding[0] if feeding else None), bn
        p = feeding[0]
        cls = type(p).__name__
        if cls in NORMALIZATION_TYPES:
            bn = True
            current = p
            continue
        if cls in ("Dropout", "Identity", "FoldedAway") or (cls == "Activation" and
                                              function_kind(p.activation) is None and
                                              getattr(p.activation, "__name__", "") == "linear"):
            current = p
            continue
        return p, bn
    return None, bn


def activation_layers(model: Any) -> list[ActivationLayer]:
    """Every layer of `model` that applies an activation, in model order."""
    out = []
    for layer in flat_layers(model):
        kind, how = layer_kind(layer)
        if kind is None:
            continue
        if how.startswith("activation="):
            producer, bn = layer, False
        else:
            producer, bn = _producer(layer)
        ptype = type(producer).__name__ if producer is not None else None
        has_bias = bool(getattr(producer, "use_bias", False)) if producer is not None else False
        out.append(ActivationLayer(layer=layer.name, kind=kind, how=how,
                                   producer=producer.name if producer is not None else None,
                                   producer_type=ptype, bn_between=bn, has_bias=has_bias))
    return out
