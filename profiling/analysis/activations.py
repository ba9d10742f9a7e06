"""Activation audit: every activation that ran in a trace, fused or not, and what to do about it.

TF traces name each op "scope/node:OpType". Grappler names a fused kernel after the last op it
absorbed, so `model/conv1/Relu:_MklNativeFusedConv2D` is a ReLU fused into its convolution, while
`model/leaky/LeakyRelu:LeakyRelu` ran on its own. XLA fusions are named after their ops
(`add_maximum_fusion`). PyTorch/Chrome traces only have op names (`aten::relu`), so their scope
is empty and fusion is known only where the name says it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

KIND_OF_OP = {
    "relu": "relu", "relu6": "relu6", "leakyrelu": "leaky_relu", "elu": "elu", "selu": "selu",
    "gelu": "gelu", "sigmoid": "sigmoid", "tanh": "tanh", "softplus": "softplus",
    "maximum": "maximum", "selectv2": "where", "select": "where",
    # PyTorch (aten::) names
    "relu_": "relu", "leaky_relu": "leaky_relu", "leaky_relu_": "leaky_relu", "elu_": "elu",
    "gelu_": "gelu", "sigmoid_": "sigmoid", "tanh_": "tanh", "hardtanh": "relu6",
    "hardtanh_": "relu6", "clamp_min": "maximum", "clamp_min_": "maximum", "where": "where",
    "silu": "sigmoid", "logistic": "sigmoid", "customrelu": "relu",
}
KINDS = ("relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "tanh", "softplus",
         "maximum", "where")
FUSED_TYPE_RE = re.compile(r"Fused|fusion", re.I)
XLA_TOKENS_IGNORED = {"broadcast", "constant", "copy", "fusion", "loop", "input", "reduce",
                      "convert", "bitcast", "reshape", "transpose", ""}
COLUMNS = ["scope", "op", "kind", "fused", "occurrences", "self_us", "pct"]


def _kind(token: str) -> str | None:
    return KIND_OF_OP.get(re.sub(r"_\d+$", "", token).lower())


def _site(long_name: str, name: str, cat: str) -> tuple[str, str, str, object] | None:
    """(scope, op, kind, fused) of one op event, or None when it is no activation."""
    node, _, op_type = long_name.partition(":") if ":" in long_name else ("", "", name)
    op_type = op_type or name
    leaf = node.rsplit("/", 1)[-1] if node else ""
    scope = node.rsplit("/", 1)[0] if "/" in node else ""
    if FUSED_TYPE_RE.search(op_type) and node:  # Grappler: named after the absorbed activation
        kind = _kind(leaf)
        return (scope, op_type, kind, True) if kind else None
    if FUSED_TYPE_RE.search(name) and not node:  # an XLA fusion kernel: named after its ops
        tokens = [t for t in re.split(r"[._]", name.lower()) if not t.isdigit()]
        kinds = [KIND_OF_OP[t] for t in tokens if t in KIND_OF_OP and t != "select"]
        if not kinds:
            return None
        others = [t for t in tokens if t not in KIND_OF_OP and t not in XLA_TOKENS_IGNORED]
        return ("", name, kinds[0], bool(others))
    base = op_type.removeprefix("aten::")
    kind = _kind(base)
    if kind is None:
        return None
    if op_type.startswith("aten::") or not long_name:
        return ("", op_type, kind, False if op_type.startswith("aten::") else "unknown")
    return (scope, op_type, kind, False)


def activation_sites(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (scope, op, kind, fused): occurrences and self time (µs) of the events.

    A `where` (SelectV2) counts only with a Greater in its scope (the x > 0 test), whose time
    is added to it."""
    if events.empty:
        return pd.DataFrame(columns=COLUMNS[:-1])
    name = events["name"].astype(str)
    ops = events[(events["cat"].astype(str).isin(["tf_op", "cpu_op", "kernel", "op", "operator"])
                  | name.str.contains("fusion", case=False)) & ~name.str.startswith("end: ")]
    if ops.empty:
        return pd.DataFrame(columns=COLUMNS[:-1])
    keys = pd.DataFrame({"long_name": ops["long_name"].astype(str),
                         "name": ops["name"].astype(str), "cat": ops["cat"].astype(str)})
    distinct = keys.drop_duplicates()
    sites = {tuple(r): _site(*r) for r in distinct.itertuples(index=False)}
    found = [sites[tuple(r)] for r in keys.itertuples(index=False)]
    if "parent" in ops.columns:  # aten::relu calling aten::clamp_min is one activation
        site_of_row = dict(zip(ops.index, found, strict=True))
        found = [site_of_row.get(p) or s if s is not None else None
                 for s, p in zip(found, ops["parent"], strict=True)]
    mask = np.array([s is not None for s in found])
    rows = pd.DataFrame([s for s in found if s is not None],
                        columns=["scope", "op", "kind", "fused"])
    rows["self_us"] = ops["self_us"].to_numpy(float)[mask]
    rows["fused"] = rows["fused"].astype(object)
    out = rows.groupby(["scope", "op", "kind", "fused"], sort=False).agg(
        occurrences=("self_us", "size"), self_us=("self_us", "sum")).reset_index()
    greater = (keys["name"].isin(["Greater", "GreaterEqual"]) & (keys["long_name"] != "")).to_numpy()
    g_time: dict[str, float] = {}
    for long_name, t in zip(keys["long_name"].to_numpy()[greater],
                            ops["self_us"].to_numpy(float)[greater], strict=True):
        scope = long_name.split(":", 1)[0].rsplit("/", 1)[0]
        g_time[scope] = g_time.get(scope, 0.0) + t
    is_where = (out["kind"] == "where") & (out["scope"] != "")
    out = out[~is_where | out["scope"].isin(list(g_time))].copy()
    out["self_us"] = [t + (g_time.get(sc, 0.0) if k == "where" else 0.0)
                      for t, sc, k in zip(out["self_us"], out["scope"], out["kind"], strict=True)]
    return out.reset_index(drop=True)


def audit(events: pd.DataFrame, fuses_here: dict[str, bool] | None = None) -> dict:
    """The activation audit of a trace (the `audit --json` contract).

    activations: scope, op, kind, fused (True/False/"unknown"), occurrences, self_us, pct (of
    the traced wall time, first start to last end); activation_pct and unfused_pct (sums of pct);
    recommendations: one sentence per separate activation, largest first, using `fuses_here`
    (kind -> fused into a convolution in this lab's fusion runs) when given.
    """
    span = float((events.ts_us + events.dur_us).max() - events.ts_us.min()) if len(events) else 0
    sites = activation_sites(events)
    sites["pct"] = 100 * sites["self_us"] / span if span > 0 else 0.0
    sites = sites.sort_values(["self_us", "scope"], ascending=[False, True])
    records = [{"scope": r.scope, "op": r.op, "kind": r.kind,
                "fused": r.fused if r.fused == "unknown" else bool(r.fused),
                "occurrences": int(r.occurrences), "self_us": float(r.self_us),
                "pct": float(r.pct)} for r in sites.itertuples(index=False)]
    unfused = [r for r in records if r["fused"] is False]
    return {"activations": records,
            "activation_pct": float(sum(r["pct"] for r in records)),
            "unfused_pct": float(sum(r["pct"] for r in unfused)),
            "recommendations": recommendations(unfused, fuses_here or LAB_FUSION)}


# What this lab measured (tests/test_audit.py builds the model and checks it): under tf.function
# on CPU, Grappler's oneDNN remapper fuses Conv2D/MatMul + BiasAdd + these activations.
LAB_FUSION = {"relu": True, "relu6": True, "leaky_relu": True, "elu": True, "sigmoid": True,
              "tanh": True, "maximum": False, "where": False}
FUSABLE_SPELLING = {"maximum": "tf.nn.relu (nn_relu)", "where": "tf.nn.relu (nn_relu)",
                    "relu": "nn_relu", "relu6": "tf.nn.relu6", "leaky_relu": "tf.nn.leaky_relu",
                    "elu": "tf.nn.elu", "sigmoid": "tf.sigmoid", "tanh": "tf.tanh"}


def recommendations(unfused: list[dict], fuses_here: dict[str, bool], top: int = 5) -> list[str]:
    """Sentences for the separate activations that cost the most."""
    out = []
    for r in unfused[:top]:
        where = f"`{r['scope']}/{r['op']}`" if r["scope"] else f"`{r['op']}`"
        text = f"{where} runs as a separate op ({r['pct']:.1f}% of step)"
        if "fusion" in r["op"]:
            out.append(text + "; XLA gave it a fusion kernel of its own: compile the layer "
                       "that produces its input in the same jit_compile function to fuse them")
            continue
        fusable = [k for k, v in fuses_here.items() if v]
        if r["kind"] in fusable:
            text += (f"; {FUSABLE_SPELLING.get(r['kind'], r['kind'])} fuses into the "
                     "convolution here: check why this one was not (a layer in between, "
                     "training mode, another op reading the pre-activation)")
        elif fusable:
            text += (f"; {FUSABLE_SPELLING.get(r['kind'], 'nn_relu')} fuses into the "
                     "convolution here, this spelling does not")
        out.append(text)
    return out
