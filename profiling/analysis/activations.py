"""Activation audit: every activation that ran in a trace, fused or not, and what to do about it.

TF traces name each op "scope/node:OpType". Grappler names a fused kernel after the last op it
absorbed, so `model/conv1/Relu:_MklNativeFusedConv2D` is a ReLU fused into its convolution, while
`model/leaky/LeakyRelu:LeakyRelu` ran on its own; an activation Keras lowers to several ops (GELU,
SiLU, hard-swish, Mish, the `tf.where` ReLUs) is found from the ops of one layer scope
(profiling.analysis.activation_kinds holds the tables and patterns). XLA fusions are named after
their ops (`add_maximum_fusion`). PyTorch/Chrome traces only have op names (`aten::relu`), so
their scope is empty and fusion is known only where the name says it.

Time: an activation's `self_us` is its ops' CPU time (`cpu_us` when given: own time plus the
thread-pool work attributed to it; else self time), `pct` that over all ops' CPU time, so the
shares of all ops add up to 100%. A fused activation has no time of its own in the trace: its
`self_us` and `pct` are null and the kernel it was fused into is given beside it (`kernel_us`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from profiling.analysis import activation_kinds as K
from profiling.traces.classify import category_codes

if TYPE_CHECKING:
    from profiling.traces.attribution import Attribution

KINDS = K.KINDS
COLUMNS = ["scope", "op", "kind", "fused", "confidence", "occurrences", "self_us", "pct",
           "kernel_us", "backward_us", "ops"]
OP_CATS = {"tf_op", "cpu_op", "kernel", "op", "operator"}
FUSION_NAME_RE = re.compile(r"fusion", re.I)
STEP_NAME_RE = re.compile(r"^(?:(?:train_?)?step(?:[ #_]?\d+)?|ProfilerStep#\d+)$", re.I)


# ---- one distinct op name ------------------------------------------------------------------
def _parse(long_name: str, name: str) -> tuple[str, str, bool]:
    """(node with any gradient prefix removed, op type, is a gradient op) of one op name."""
    node, _, op_type = long_name.partition(":") if ":" in long_name else ("", "", name)
    op_type = op_type or name
    backward = False
    for prefix in K.GRADIENT_PREFIXES:
        if node.startswith(prefix) or f"/{prefix}" in node:
            node = node.split(prefix, 1)[1]
            backward = True
    return node, op_type, backward


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _display_scope(group: str) -> str:
    parts = group.split("/")
    while len(parts) > 1 and parts[-1] in K.DISPLAY_HELPER_SCOPES:
        parts.pop()
    return "/".join(parts)


def _fused_kind(node: str) -> tuple[str, str] | None:
    """(kind, confidence) of the activation a fused Conv/MatMul kernel absorbed, or None."""
    leaf = K.strip_index(node.rsplit("/", 1)[-1]).lower()
    if "/Gelu/" in f"/{node}" or leaf == "gelu":
        return "gelu", "exact"
    if leaf in K.FUSED_LEAF_KIND:
        return K.FUSED_LEAF_KIND[leaf], "exact"
    if leaf == "mul":  # oneDNN's Mish and hard-swish fusions both end in a Mul
        layer = _dirname(node).rsplit("/", 1)[-1].lower()
        hint = next((kind for token, kind in K.LAYER_NAME_HINTS if token in layer), None)
        return (hint or "unknown"), "guess"
    return None


def _aten_kind(op_type: str) -> tuple[str, bool] | None:
    """(kind, is backward) of a PyTorch op name, or None."""
    m = K.AUTOGRAD_NODE_RE.match(op_type)
    if m:
        kind = K.AUTOGRAD_NODE_KIND.get(m.group(1))
        return (kind, True) if kind else None
    if not op_type.startswith("aten::"):
        return None
    base = op_type.removeprefix("aten::")
    if base in K.ATEN_BACKWARD_KIND:
        return K.ATEN_BACKWARD_KIND[base], True
    kind = K.ATEN_KIND.get(base) or K.ATEN_KIND.get(base.rstrip("_"))
    return (kind, False) if kind else None


def _xla_kind(name: str) -> tuple[str, bool] | None:
    """(kind, fused with other work) of an XLA fusion kernel named after its ops, or None."""
    tokens = [t for t in re.split(r"[._]", name.lower()) if not t.isdigit()]
    kinds = [K.XLA_TOKEN_KIND[t] for t in tokens if t in K.XLA_TOKEN_KIND]
    if not kinds:
        return None
    others = [t for t in tokens if t not in K.XLA_TOKEN_KIND and t not in K.XLA_TOKENS_IGNORED]
    return kinds[0], bool(others)


# ---- sites from the distinct op names --------------------------------------------------------
class _Sites:
    """Sites (one per activation) and which distinct op name belongs to which, as the rules find
    them; `fwd[key]`/`bwd[key]` hold a site index."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.index: dict[tuple, int] = {}
        self.fwd: dict[int, int] = {}
        self.bwd: dict[int, int] = {}
        self.kernel: dict[int, int] = {}
        self.counted: set[int] = set()  # keys whose events count occurrences

    def add(self, scope: str, op: str, kind: str, fused: object, confidence: str,
            group: str = "", ops: str = "", framework: str = "tf") -> int:
        key = (scope, op, kind, fused)
        if key not in self.index:
            self.index[key] = len(self.rows)
            self.rows.append({"scope": scope, "op": op, "kind": kind, "fused": fused,
                              "confidence": confidence, "group": group, "ops": ops or op,
                              "framework": framework, "leaves": set()})
        return self.index[key]


def _composite(types: dict[str, int]) -> K.Composite | None:
    """The first composite whose ops are all in a scope holding `types` (op type -> count)."""
    for c in K.COMPOSITES:
        if not all(any(t in types for t in alt) for alt in c.needs):
            continue
        if any(t in types for t in c.forbids):
            continue
        if c.scale_muls is not None:
            n = types.get("Mul", 0) + types.get("RealDiv", 0)
            if not c.scale_muls[0] <= n <= c.scale_muls[1]:
                continue
        return c
    return None


def _fused_ops_kind(fused_ops: str) -> str | None:
    """The activation named in a fused kernel's `fused_ops` attribute ("[BiasAdd, Relu]")."""
    for token in re.findall(r"[A-Za-z_0-9]+", fused_ops):
        kind = K.FUSED_OPS_KIND.get(token.lower().removeprefix("_mkl").removeprefix("_fused")
                                    .removeprefix("fused").strip("_"))
        if kind:
            return kind
    return None


def _fused_ops_of(events: pd.DataFrame, rows: np.ndarray, inverse: np.ndarray,
                  keys: Sequence[tuple[str, str]]) -> dict[int, str]:
    """key -> the `fused_ops` attribute of its first event, for fused kernels whose args (when the
    trace kept them) carry it."""
    if "args" not in events.columns:
        return {}
    out: dict[int, str] = {}
    first = {}
    for k, (long_name, name) in enumerate(keys):
        if K.FUSED_KERNEL_RE.search(long_name.partition(":")[2] or name):
            first[k] = None
    if not first:
        return {}
    wanted = np.flatnonzero(np.isin(inverse, list(first)))
    args = events["args"].to_numpy()
    for i in wanted.tolist():
        k = int(inverse[i])
        if first[k] is None:
            first[k] = i
            text = str(args[rows[i]])
            if "fused_ops" in text:
                try:
                    value = json.loads(text).get("fused_ops")
                except (ValueError, AttributeError):
                    continue
                if value:
                    out[k] = str(value)
    return out


def _find_sites(keys: Sequence[tuple[str, str]], fused_ops: dict[int, str] | None = None
                ) -> _Sites:
    """Sites of the distinct (long_name, name) pairs of a trace's op events; fused_ops: a fused
    kernel key's `fused_ops` attribute, where the trace carries it."""
    sites = _Sites()
    parsed = [_parse(ln, nm) for ln, nm in keys]
    nodes = {node for node, _, bwd in parsed if node and not bwd}

    def group_of(node: str) -> str:
        parent = _dirname(node)
        # an op's own sub-ops (`LogSigmoid/Neg`, `clip_by_value/Minimum`) are in its scope
        while parent and (parent in nodes or parent.rsplit("/", 1)[-1] in K.HELPER_SCOPES):
            parent = _dirname(parent)
        return parent

    groups: dict[str, dict[str, list[int]]] = {}
    for i, (node, op_type, bwd) in enumerate(parsed):
        if node and not bwd and op_type not in K.BOOKKEEPING_OPS:
            groups.setdefault(group_of(node), {}).setdefault(op_type, []).append(i)
    pure: dict[str, bool] = {}
    for group, types in groups.items():
        c = _composite({t: len(v) for t, v in types.items()})
        if c is None:
            continue
        members = sorted(t for t in types if t in c.members)
        s = sites.add(_display_scope(group), c.op if c.op in types else members[0], c.kind,
                      False, "pattern", group, "+".join(members))
        for t in members:
            for i in types[t]:
                sites.fwd[i] = s
                if t == sites.rows[s]["op"]:
                    sites.counted.add(i)
                sites.rows[s]["leaves"].add(parsed[i][0].rsplit("/", 1)[-1])
        pure[group] = all(t in c.members for t in types)
    for i, ((_, name), (node, op_type, bwd)) in enumerate(zip(keys, parsed, strict=True)):
        if i in sites.fwd or bwd:
            continue
        group = group_of(node) if node else ""
        if node and K.FUSED_KERNEL_RE.search(op_type):
            named = _fused_ops_kind((fused_ops or {}).get(i, ""))
            found = (named, "exact") if named else _fused_kind(node)
            if found:
                s = sites.add(_display_scope(_dirname(node)), op_type, found[0], True, found[1],
                              _dirname(node))
                sites.fwd[i] = sites.kernel[i] = s
                sites.counted.add(i)
            continue
        if op_type in K.SINGLE_OP_KIND:
            fused = False if node else "unknown"
            s = sites.add(_display_scope(group), op_type, K.SINGLE_OP_KIND[op_type], fused,
                          "exact", group)
        elif op_type == "Maximum" and node:
            # tf.maximum(x, 0) only where it is all its scope computes, outside normalization
            if set(groups[group]) != {"Maximum"} or K.NORMALIZATION_SCOPE_RE.search(node):
                continue
            s = sites.add(_display_scope(group), op_type, "maximum", False, "pattern", group)
        elif (aten := _aten_kind(op_type)) is not None:
            if aten[1]:
                continue  # PyTorch backward: joined to its forward site below
            s = sites.add("", op_type, aten[0], False, "exact", framework="pytorch")
        elif not node and FUSION_NAME_RE.search(name):
            xla = _xla_kind(name)
            if xla is None:
                continue
            s = sites.add("", name, xla[0], xla[1], "guess", framework="xla")
        elif not node and op_type in ("Maximum",):
            s = sites.add("", op_type, "maximum", "unknown", "guess")
        else:
            continue
        sites.fwd[i] = s
        sites.counted.add(i)
        if node:
            sites.rows[s]["leaves"].add(node.rsplit("/", 1)[-1])
    _join_backward(sites, keys, parsed, pure)
    return sites


def fused_activations(ops: pd.DataFrame) -> pd.DataFrame:
    """The audit's verdict on each op of an op-stats table (columns op_name, op_type, as
    profiling.traces.framework_op_stats gives them): the one answer to "was this activation
    fused?". Returns `ops` with scope (the activation's layer scope), kind and fused (True: an
    activation fused into this Conv/MatMul kernel; False: an activation that ran on its own;
    None: no activation, or a gradient op)."""
    names, types = ops["op_name"].astype(str).tolist(), ops["op_type"].astype(str).tolist()
    keys = list(dict.fromkeys(zip((f"{n}:{t}" for n, t in zip(names, types, strict=True)),
                                  types, strict=True)))
    sites = _find_sites(keys)
    found = {key: sites.rows[sites.fwd[k]] for k, key in enumerate(keys) if k in sites.fwd}
    verdict = [found.get((f"{n}:{t}", t)) for n, t in zip(names, types, strict=True)]
    out = ops.copy()
    out["scope"] = [v["scope"] if v else None for v in verdict]
    out["kind"] = [v["kind"] if v else None for v in verdict]
    out["fused"] = pd.Series([(v["fused"] if v["fused"] == "unknown" else bool(v["fused"]))
                              if v else None for v in verdict], index=out.index, dtype=object)
    return out


def _join_backward(sites: _Sites, keys: Sequence[tuple[str, str]], parsed: list,
                   pure: dict[str, bool]) -> None:
    """Gradient ops to the forward site they differentiate (TF: by scope; PyTorch: by kind)."""
    by_group: dict[str, list[int]] = {}
    for s, row in enumerate(sites.rows):
        if row["group"]:
            by_group.setdefault(row["group"], []).append(s)
    aten_site = {row["kind"]: s for s, row in enumerate(sites.rows)
                 if row["framework"] == "pytorch"}
    for i, (node, op_type, bwd) in enumerate(parsed):
        if i in sites.fwd:
            continue
        aten = _aten_kind(op_type)
        if aten is not None and aten[1]:
            s = aten_site.get(aten[0])
            if s is None:
                s = aten_site[aten[0]] = sites.add("", f"aten::{aten[0]}", aten[0], False,
                                                   "exact", framework="pytorch")
            sites.bwd[i] = s
            continue
        if not (bwd and node) or K.CONV_OR_MATMUL_RE.search(op_type) or "BiasAdd" in op_type:
            continue
        grad_kind = K.GRAD_OP_KIND.get(op_type)
        path = node
        while path:  # the innermost forward group this gradient lies in
            path = _dirname(path)
            for s in by_group.get(path, ()):
                row = sites.rows[s]
                inner = node[len(path) + 1:]
                head = inner.split("/", 1)[0]
                if (grad_kind == row["kind"] or pure.get(path)
                        or (grad_kind is None and ("/" not in inner or head in row["leaves"]))):
                    sites.bwd[i] = s
                    break
            if i in sites.bwd or path in by_group:
                break


def _event_codes(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Rows that are ops, and per such row the index of its distinct (long_name, name)."""
    name_codes, names = category_codes(events["name"], None)
    cat_codes, cats = category_codes(events["cat"], None)
    long_codes, longs = category_codes(events["long_name"], None) if "long_name" in events else \
        (np.full(len(events), -1, dtype=np.int64), [])
    op_name = np.asarray([bool(FUSION_NAME_RE.search(n)) and not n.startswith("end: ")
                          for n in names] or [False])
    op_cat = np.asarray([c in OP_CATS for c in cats] or [False])
    rows = np.flatnonzero(op_name[name_codes] | op_cat[cat_codes])
    width = len(names) + 1
    key = (long_codes[rows].astype(np.int64) + 1) * width + name_codes[rows].astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    keys = [(longs[k // width - 1] if k // width > 0 else "", names[k % width])
            for k in uniq.tolist()]
    return rows, inverse.ravel(), keys, names


def _cpu(events: pd.DataFrame, cpu_us: np.ndarray | Sequence[float] | None) -> np.ndarray:
    if cpu_us is None:
        return events["self_us"].to_numpy(float)
    cpu = np.asarray(cpu_us, dtype=float)
    if cpu.shape != (len(events),):
        raise ValueError(f"cpu_us has {cpu.size} values for {len(events)} events")
    return cpu


def _sites_frame(events: pd.DataFrame, cpu: np.ndarray) -> tuple[pd.DataFrame, float]:
    """(one row per site with times and the row of its first forward event, all ops' time)."""
    cols = COLUMNS + ["first_row", "group", "framework"]
    if events.empty:
        return pd.DataFrame(columns=cols), 0.0
    rows, inverse, keys, _ = _event_codes(events)
    op_total = float(cpu[rows].sum()) if len(rows) else 0.0
    if len(rows) == 0:
        return pd.DataFrame(columns=cols), op_total
    sites = _find_sites(keys, _fused_ops_of(events, rows, inverse, keys))
    if not sites.rows:
        return pd.DataFrame(columns=cols), op_total
    n = len(sites.rows)

    def of_key(table: dict[int, int] | set[int]) -> np.ndarray:
        out = np.full(len(keys), -1, dtype=np.int32)
        for k in table:
            out[k] = table[k] if isinstance(table, dict) else 0
        return out

    # per event only for the op rows that are an activation's (a big trace has few)
    fwd_of_row, bwd_of_row = of_key(sites.fwd)[inverse], of_key(sites.bwd)[inverse]
    kernel_of_row, counted_of_row = of_key(sites.kernel)[inverse], of_key(sites.counted)[inverse]
    hit = fwd_of_row >= 0
    fwd_rows, fwd_site = rows[hit], fwd_of_row[hit]
    counted_rows = rows[hit & (counted_of_row >= 0)]
    bhit = bwd_of_row >= 0
    bwd_rows, bwd_site = rows[bhit], bwd_of_row[bhit]
    khit = kernel_of_row >= 0
    kernel_rows, kernel_site = rows[khit], kernel_of_row[khit]
    if "parent" in events.columns:  # an activation inside an activation is its parent's
        parent = events["parent"].to_numpy()
        for which in ("fwd", "bwd"):
            act_rows, act_site = (fwd_rows, fwd_site) if which == "fwd" else (bwd_rows, bwd_site)
            site_at = dict(zip(act_rows.tolist(), act_site.tolist(), strict=True))
            parents = parent[act_rows]
            inner = np.asarray([p in site_at for p in parents.tolist()], dtype=bool)
            if inner.any():
                act_site = act_site.copy()
                act_site[inner] = [site_at[p] for p in parents[inner].tolist()]
                if which == "fwd":
                    fwd_site = act_site
                    counted_rows = np.setdiff1d(counted_rows, act_rows[inner])
                else:
                    bwd_site = act_site
    fwd_site_of = dict(zip(fwd_rows.tolist(), fwd_site.tolist(), strict=True))
    counted_site = np.asarray([fwd_site_of[r] for r in counted_rows.tolist()], dtype=np.int64)
    occurrences = np.bincount(counted_site, minlength=n)
    fwd_us = np.bincount(fwd_site, weights=cpu[fwd_rows], minlength=n)
    bwd_us = np.bincount(bwd_site, weights=cpu[bwd_rows], minlength=n)
    kernel_us = np.bincount(kernel_site, weights=cpu[kernel_rows], minlength=n)
    ts = events["ts_us"].to_numpy(float)
    first_row = np.full(n, -1, dtype=np.int64)
    order = np.argsort(ts[counted_rows], kind="stable")[::-1]
    first_row[counted_site[order]] = counted_rows[order]  # the earliest write wins: reversed
    out = pd.DataFrame([{k: r[k] for k in ("scope", "op", "kind", "fused", "confidence", "ops",
                                           "group", "framework")} for r in sites.rows])
    out["fused"] = out["fused"].astype(object)
    out["occurrences"], out["self_us"], out["backward_us"] = occurrences, fwd_us, bwd_us
    out["kernel_us"], out["first_row"] = kernel_us, first_row
    out = out[(out["occurrences"] > 0) | (out["backward_us"] > 0)].reset_index(drop=True)
    return out, op_total


def activation_sites(events: pd.DataFrame, cpu_us: np.ndarray | None = None) -> pd.DataFrame:
    """One row per activation site: scope, op, kind, fused, confidence, occurrences, self_us
    (forward CPU time, µs; the fused kernel's time for a fused one), backward_us, kernel_us, ops
    (the op types of a composite), first_row (the row of its earliest forward event).

    Rules run once per distinct (long_name, name), not per event. An activation nested in
    another (aten::relu calling aten::clamp_min) counts as its parent."""
    sites, _ = _sites_frame(events, _cpu(events, cpu_us))
    return sites


def count_steps(events: pd.DataFrame) -> int:
    """Outermost step events (`step`, `train_step`, PyTorch's `ProfilerStep#N`); 0 when none."""
    if events.empty:
        return 0
    codes, names = category_codes(events["name"], None)
    is_step = np.asarray([bool(STEP_NAME_RE.match(n)) for n in names] or [False])
    top = events["depth"].to_numpy() == 0 if "depth" in events else np.ones(len(events), bool)
    return int((is_step[codes] & top).sum())


def audit(events: pd.DataFrame, fuses_here: dict[str, bool] | None = None,
          cpu_us: np.ndarray | Sequence[float] | None = None,
          op_total_us: float | None = None) -> dict:
    """The activation audit of a trace (the `audit --json` contract).

    cpu_us: CPU time per event (µs, own time plus attributed thread-pool work), aligned with
    `events`' rows; self time when None. op_total_us: all ops' CPU time (µs); the sum over op
    events when None.

    activations: scope, op, kind, fused (True/False/"unknown"), confidence ("exact": a named op
    or fused kernel, "pattern": a composite or a spelling read from its scope, "guess": a name
    only), occurrences, self_us (CPU µs; null when fused), pct (self_us over all ops' CPU time;
    null when fused), kernel_us (a fused one: the kernel's CPU µs, else null), backward_us (its
    gradient ops' CPU µs, 0 in inference), ops (a composite's op types). activation_pct and
    unfused_pct: sums of pct (fused kernels never count); steps: outermost step events (0: none);
    advice: grouped recommendations (profiling.analysis.advice), recommendations: their texts.
    """
    from profiling.analysis.advice import recommend

    cpu = _cpu(events, cpu_us)
    sites, summed = _sites_frame(events, cpu)
    total = float(op_total_us) if op_total_us is not None else summed
    steps = count_steps(events)
    records = []
    for r in sites.itertuples(index=False):
        fused = r.fused if r.fused == "unknown" else bool(r.fused)
        own = None if fused is True else float(r.self_us)
        records.append({
            "scope": r.scope, "op": r.op, "kind": r.kind, "fused": fused,
            "confidence": r.confidence, "occurrences": int(r.occurrences), "self_us": own,
            "pct": None if own is None else (100 * own / total if total > 0 else 0.0),
            "kernel_us": float(r.kernel_us) if fused is True else None,
            "backward_us": float(r.backward_us), "ops": r.ops})
    order = sorted(range(len(records)), key=lambda i: (
        -(records[i]["self_us"] if records[i]["self_us"] is not None else -1.0),
        records[i]["scope"], records[i]["op"]))
    records = [records[i] for i in order]
    context = sites.iloc[order].reset_index(drop=True) if len(sites) else sites
    advice = recommend(events, records, context, total, steps, fuses_here)
    return {"activations": records,
            "activation_pct": float(sum(r["pct"] or 0.0 for r in records)),
            "unfused_pct": float(sum(r["pct"] or 0.0 for r in records if r["fused"] is False)),
            "steps": steps, "advice": advice,
            "recommendations": [a["text"] for a in advice]}


def audit_trace(events: pd.DataFrame, fuses_here: dict[str, bool] | None = None,
                kind: pd.Series | None = None, att: Attribution | None = None) -> dict:
    """`audit` with thread-pool work given to its op (profiling.traces.attribution): each
    activation's CPU time over all ops' CPU time, the unattributed pool work included, so the
    shares of op_stats.op_table's rows add up to 100%. What every front end calls. ``kind``
    and ``att``: the events' classify_events and attribute, when the caller has them already."""
    from profiling.traces.attribution import attribute
    from profiling.traces.classify import classify_events
    from profiling.traces.op_stats import op_table

    if events.empty:
        return audit(events, fuses_here)
    kind = classify_events(events) if kind is None else kind
    att = attribute(events, kind) if att is None else att
    table = op_table(events, kind, att)
    total = float(table["cpu_us"].sum()) if len(table) else None
    result = audit(events, fuses_here, cpu_us=att.cpu_us, op_total_us=total)
    result["time"] = att.time_label
    return result
