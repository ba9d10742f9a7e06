"""The audit of a model's trace joined to its activation layers, by scope.

TF names a Keras layer's ops under the layer's name, made unique with a suffix inside a
`tf.function` (`mynet_1/act1_1/Relu`), and Grappler names a fused kernel after the last op it
absorbed (`mynet_1/conv2_1/Relu:_FusedConv2D`), so an audit row belongs to the innermost scope
component that names a layer, with or without one `_N` suffix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from profiling.models.walk import FUSABLE_PRODUCERS, ActivationLayer

SUFFIX = re.compile(r"_\d+$")


def layer_of_scope(scope: str, names: set[str]) -> str | None:
    """The layer (of `names`) whose ops `scope` holds: its innermost matching component."""
    for part in reversed([p for p in scope.split("/") if p]):
        if part in names:
            return part
        stripped = SUFFIX.sub("", part)
        if stripped in names:
            return stripped
    return None


def cause(layer: ActivationLayer, fused: bool | None) -> str:
    """Why this activation runs (or not) in a separate op, from the model's structure."""
    if fused:
        return "fused into its producer's kernel"
    if layer.bn_between and layer.producer_type in FUSABLE_PRODUCERS:
        return (f"BatchNormalization between {layer.producer} and this activation blocks the "
                "Conv/MatMul + BiasAdd + activation fusion; fold it for inference")
    if layer.how == "Lambda" or layer.kind in ("maximum", "where"):
        return "written as ops Grappler does not recognise as an activation"
    if layer.producer_type not in FUSABLE_PRODUCERS:
        return f"its input comes from a {layer.producer_type or 'non-layer op'}, which has no " \
               "fused kernel with an activation"
    if fused is None:
        return "not found in the trace"
    bias = "BiasAdd + " if layer.has_bias else ""
    return (f"separate op: no fused {layer.producer_type} + {bias}{layer.kind} kernel ran here "
            "(read from the trace)")


def join(layers: Sequence[ActivationLayer], rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per activation layer: layer, kind, fused (None: not placed in the trace),
    time_us (its own CPU time in the trace, None when fused), kernel_us (the kernel it was
    fused into),
    pct (of all ops' CPU time), occurrences, cause; in model order."""
    names = {layer.layer for layer in layers}
    by_layer: dict[str, list[dict]] = {}
    for r in rows:
        owner = layer_of_scope(str(r.get("scope") or ""), names)
        if owner is not None:
            by_layer.setdefault(owner, []).append(r)
    out = []
    for layer in layers:
        hits = by_layer.get(layer.layer, [])
        fused: bool | None = None
        if hits:
            fused = all(r.get("fused") is True for r in hits)
        own = [r for r in hits if r.get("fused") is not True]
        time_us = sum(float(r.get("self_us") or 0.0) for r in own) if own else None
        kernel = [float(r.get("kernel_us") or 0.0) for r in hits if r.get("fused") is True]
        out.append({
            "layer": layer.layer, "kind": layer.kind, "how": layer.how,
            "producer": layer.producer, "fused": fused,
            "time_us": time_us, "kernel_us": sum(kernel) if kernel else None,
            "pct": sum(float(r.get("pct") or 0.0) for r in own) if own else (0.0 if hits
                                                                             else None),
            "occurrences": sum(int(r.get("occurrences") or 0) for r in hits),
            "trace_kinds": sorted({str(r.get("kind")) for r in hits}),
            "cause": cause(layer, fused),
        })
    return out
