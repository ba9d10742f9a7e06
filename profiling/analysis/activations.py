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

from profiling.traces.classify import category_codes

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


OP_CATS = {"tf_op", "cpu_op", "kernel", "op", "operator"}


def activation_sites(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (scope, op, kind, fused): occurrences and self time (µs) of the events.

    Rules run once per distinct (long_name, name, cat), not per event. An activation nested in
    another (aten::relu calling aten::clamp_min) counts as its parent. A `where` (SelectV2)
    counts only with a Greater in its scope (the x > 0 test), whose time is added to it."""
    cols = COLUMNS[:-1]
    if events.empty:
        return pd.DataFrame(columns=cols)
    # compact codes per event (int8 for few names); widened only for the rows that are ops
    name_codes, names = category_codes(events["name"], None)
    cat_codes, cats = category_codes(events["cat"], None)
    long_codes, longs = category_codes(events["long_name"], None) if "long_name" in events else \
        (np.zeros(len(events), dtype=np.int64), [""])
    op_name = np.asarray([("fusion" in n.lower()) and not n.startswith("end: ") for n in names]
                         or [False])
    op_cat = np.asarray([c in OP_CATS for c in cats] or [False])
    rows = np.flatnonzero(op_name[name_codes] | op_cat[cat_codes])
    if len(rows) == 0:
        return pd.DataFrame(columns=cols)
    width_c, width_n = len(cats) + 1, (len(names) + 1) * (len(cats) + 1)
    key = (long_codes[rows].astype(np.int64) + 1) * width_n \
        + name_codes[rows].astype(np.int64) * width_c + cat_codes[rows]
    uniq, inverse = np.unique(key, return_inverse=True)
    site_list: list[tuple] = []
    site_of_key = np.full(len(uniq), -1, dtype=np.int64)
    index: dict[tuple, int] = {}
    for i, k in enumerate(uniq.tolist()):
        lc, nc, cc = k // width_n - 1, (k % width_n) // width_c, k % width_c
        site = _site(longs[lc] if lc >= 0 else "", names[nc], cats[cc])
        if site is not None:
            site_of_key[i] = index.setdefault(site, len(site_list))
            if site_of_key[i] == len(site_list):
                site_list.append(site)
    site_of_row = np.full(len(events), -1, dtype=np.int64)
    site_of_row[rows] = site_of_key[inverse.ravel()]
    if "parent" in events.columns:  # an activation inside an activation is its parent's
        parent = events["parent"].to_numpy()
        inner = np.flatnonzero((site_of_row >= 0) & (parent >= 0))
        inner = inner[site_of_row[parent[inner]] >= 0]
        site_of_row[inner] = site_of_row[parent[inner]]
    hit = site_of_row >= 0
    if not hit.any():
        return pd.DataFrame(columns=cols)
    self_us = events["self_us"].to_numpy(float)
    occurrences = np.bincount(site_of_row[hit], minlength=len(site_list))
    time_us = np.bincount(site_of_row[hit], weights=self_us[hit], minlength=len(site_list))
    out = pd.DataFrame(site_list, columns=["scope", "op", "kind", "fused"])
    out["fused"] = out["fused"].astype(object)
    out["occurrences"], out["self_us"] = occurrences, time_us
    # A SelectV2 is a ReLU spelled tf.where only with the x > 0 test beside it.
    greater = np.asarray([n in ("Greater", "GreaterEqual") for n in names] or [False])
    g_rows = np.flatnonzero(greater[name_codes] & (long_codes >= 0))
    g_time: dict[str, float] = {}
    for lc, t in zip(long_codes[g_rows], self_us[g_rows], strict=True):
        scope = longs[lc].split(":", 1)[0].rsplit("/", 1)[0]
        g_time[scope] = g_time.get(scope, 0.0) + float(t)
    is_where = (out["kind"] == "where") & (out["scope"] != "")
    out = out[(out["occurrences"] > 0) & (~is_where | out["scope"].isin(list(g_time)))].copy()
    out["self_us"] = [t + (g_time.get(sc, 0.0) if k == "where" else 0.0)
                      for t, sc, k in zip(out["self_us"], out["scope"], out["kind"], strict=True)]
    return out[cols].reset_index(drop=True)


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
