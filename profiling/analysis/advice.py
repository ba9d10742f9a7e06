"""What to do about the activations of a trace: advice that names the cause read from the trace.

For each separate (unfused) activation the op that fed it is read from the trace: the op that ran
just before it on the same thread (TF's executor runs a node's consumer inline on the thread that
finished it), skipping bookkeeping and the activation's own ops. Causes, grouped over sites:

- `batchnorm`: BatchNorm arithmetic between a Conv/MatMul and an activation Grappler fuses
  (Keras 3 lowers BatchNormalization to Mul/AddV2/Rsqrt, so the Conv+BiasAdd+activation remapper
  cannot fire); folding BN into the conv for inference lets it fuse;
- `batchnorm_depthwise`: the same after a depthwise conv, where folding removes the BatchNorm
  arithmetic but no fused kernel exists on CPU (measured), so the activation stays separate;
- `spelling`: a ReLU written as tf.maximum / tf.where: write it as tf.nn.relu, quoting this
  lab's measured cost where it has one;
- `not_fused`: a fusable activation right after a Conv/MatMul that still ran separately;
- `xla_separate`: an XLA fusion kernel holding only the activation.

A fused activation needs nothing. Only TF traces get TF advice (PyTorch traces get none: this
lab measured nothing there); a group of sites under 0.1% of op time in all gets none.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from profiling.analysis import activation_kinds as K
from profiling.traces.classify import category_codes

NEGLIGIBLE_PCT = 0.1
SITES_NAMED = 6
# Under tf.function on CPU, Grappler fused Conv2D/MatMul + BiasAdd + these, with oneDNN on or off
# (README "What each activation does to fusion"; tests/test_trace_real.py checks relu, relu6 and
# leaky_relu fused and the spellings not). Other kinds count as fusable only where the same trace
# shows one fused into the same kind of kernel.
LAB_FUSION = {"relu": True, "relu6": True, "leaky_relu": True, "maximum": False, "where": False}
LAB_EVIDENCE = ("in this lab Conv2D/MatMul + BiasAdd + {kind} fuse under tf.function (README "
                "\"What each activation does to fusion\")")
# `relu-lab model keras.applications:MobileNetV2 --what-if fold_bn` (README "Your model,
# measured"): after the fold every Conv2D's Relu6 ran fused, no DepthwiseConv2D's did.
DEPTHWISE_EVIDENCE = ("this lab measured no fused DepthwiseConv2D + BiasAdd + activation kernel "
                      "on CPU (after folding, MobileNetV2's 17 depthwise Relu6 still ran "
                      "separately)")
# README "Measured: every variant at 1e7 float32" (eager, time / nn_relu, paired, 95% CI) and
# "What each activation does to fusion".
SPELLING_COST = {
    "where": "this lab measured tf.where(x > 0, x, 0) at 4.39× the time of tf.nn.relu "
             "(95% CI 3.77–5.54, 1e7 float32, eager; README \"Measured: every variant\")",
    "maximum": "this lab measured tf.maximum(x, 0) at 1.02× tf.nn.relu alone (95% CI "
               "0.85–1.27, 1e7 float32, eager), but only tf.nn.relu fuses into a Conv2D/MatMul "
               "+ BiasAdd (README \"What each activation does to fusion\")",
}
SPELLED_AS = {"where": "tf.nn.relu / activation='relu'", "maximum": "tf.nn.relu / activation='relu'",
              "leaky_relu": "tf.nn.leaky_relu / keras.layers.LeakyReLU",
              "elu": "tf.nn.elu / activation='elu'"}
SPELLING = {"maximum": "tf.maximum(x, 0)", "where": "tf.where(x > 0, x, 0)",
            "leaky_relu": "tf.where(x > 0, x, alpha * x)", "elu": "tf.where(x > 0, x, exp(x) - 1)"}
OP_OF_KIND = {"relu": "Relu", "relu6": "Relu6", "leaky_relu": "LeakyRelu", "elu": "Elu",
              "sigmoid": "Sigmoid", "tanh": "Tanh", "maximum": "Maximum", "where": "SelectV2"}


def _where(r: dict) -> str:
    return f"{r['scope']}/{r['op']}" if r["scope"] else r["op"]


def _layer(node: str) -> str:
    """The layer a node belongs to: `model/conv2_1/BiasAdd` -> `conv2_1`."""
    parts = [p for p in node.split("/") if p not in K.HELPER_SCOPES]
    return parts[-2] if len(parts) >= 2 else node


class _Feeders:
    """The op that ran before a given event on its thread, for the op events of a trace."""

    def __init__(self, events: pd.DataFrame) -> None:
        cat_codes, cats = category_codes(events["cat"], None)
        is_op = np.asarray([c in {"tf_op", "cpu_op", "op", "operator"} for c in cats] or [False])
        rows = np.flatnonzero(is_op[cat_codes])
        self.tid = category_codes(events["tid"], None)[0] if "tid" in events else \
            np.zeros(len(events), np.int8)
        ts = events["ts_us"].to_numpy(float)
        self.order = rows[np.lexsort((ts[rows], self.tid[rows]))]
        self.start = ts
        end = ts + events["dur_us"].to_numpy(float)
        self.by_end = rows[np.argsort(end[rows], kind="stable")]
        self.end_sorted = end[self.by_end]
        self.long_codes, self.longs = category_codes(events["long_name"], None) \
            if "long_name" in events else (np.full(len(events), -1, np.int8), [])

    def before(self, row: int, skip_group: str, skip_scope_re=None) -> tuple[str, str, int]:
        """(node, op type, row) of the op that ran before `row` on its thread ("", "", -1)."""
        hits = np.flatnonzero(self.order == row)
        i = int(hits[0]) - 1 if len(hits) else -1
        earlier = (int(self.order[j]) for j in range(i, -1, -1))
        same_thread = itertools.takewhile(lambda r: self.tid[r] == self.tid[row], earlier)
        return self._first_op(same_thread, skip_group, skip_scope_re)

    def ended_before(self, row: int, skip_scope_re) -> tuple[str, str, int]:
        """(node, op type, row) of the op on any thread that ended last before `row` started,
        skipping nodes that match ``skip_scope_re``: an executor may run a layer's ops on
        another thread than the op that feeds them."""
        i = int(np.searchsorted(self.end_sorted, self.start[row], side="right")) - 1
        return self._first_op((int(self.by_end[j]) for j in range(i, -1, -1)), "",
                              skip_scope_re)

    def _first_op(self, rows: Iterable[int], skip_group: str, skip_scope_re
                  ) -> tuple[str, str, int]:
        """The first of ``rows`` that is a real op (no bookkeeping, a node outside
        ``skip_group`` and not matching ``skip_scope_re``): (node, op type, row)."""
        for r in rows:
            code = self.long_codes[r]
            node, _, op_type = (self.longs[code] if code >= 0 else "").partition(":")
            in_group = skip_group and node.startswith(skip_group + "/")
            skipped = skip_scope_re is not None and skip_scope_re.search(node)
            if op_type not in K.BOOKKEEPING_OPS and not in_group and not skipped and node:
                return node, op_type, r
        return "", "", -1


def _family(op_type: str) -> str:
    """"conv", "depthwise" or "matmul": the kind of kernel an activation can fuse into; ""
    for neither."""
    if not K.CONV_OR_MATMUL_RE.search(op_type):
        return ""
    if "depthwise" in op_type.lower():
        return "depthwise"
    return "matmul" if re.search(r"MatMul|Einsum|linear|addmm|mm|bmm", op_type) else "conv"


def _cause(feeders: _Feeders, r: dict, ctx, fusable: dict) -> tuple[str, str, str] | None:
    """(cause, the conv/matmul layer that feeds it or "", the evidence that it can fuse) of one
    separate TF activation."""
    if r["kind"] in SPELLING and ("SelectV2" in r["ops"] or r["kind"] in K.RELU_SPELLINGS):
        node, op_type, _ = feeders.before(ctx.first_row, ctx.group)
        return "spelling", _layer(node) if _family(op_type) else "", ""
    node, op_type, row = feeders.before(ctx.first_row, ctx.group)
    cause = "not_fused"
    if K.BATCHNORM_RE.search(node + "/"):
        bn_row = row
        node, op_type, row = feeders.before(row, "", K.BATCHNORM_RE)
        if not _family(op_type) and op_type != "BiasAdd":  # the conv ran on another thread
            node, op_type, row = feeders.ended_before(bn_row, K.BATCHNORM_RE)
        if op_type == "BiasAdd":  # an unfused bias of the layer before (a depthwise conv's)
            node, op_type, _ = feeders.before(row, "")
        cause = "batchnorm"
        if _family(op_type) == "depthwise" and not fusable.get((r["kind"], "depthwise")):
            return "batchnorm_depthwise", _layer(node), DEPTHWISE_EVIDENCE
    evidence = fusable.get((r["kind"], _family(op_type)))
    return (cause, _layer(node), evidence) if evidence else None


def _text(cause: str, kind: str, rows: list[dict], convs: list[str], evidence: str, pct: float,
          us: float, per: str) -> str:
    n = len(rows)
    composite = any(r.get("confidence") == "pattern" for r in rows)  # silu = Sigmoid + Mul
    op = kind if composite else rows[0]["op"] if len({r["op"] for r in rows}) == 1 else \
        OP_OF_KIND.get(kind, kind)
    names = ", ".join(f"`{_where(r)}`" for r in rows[:SITES_NAMED])
    if n > SITES_NAMED:
        names += f" and {n - SITES_NAMED} more"
    stake = f"{pct:.1f}% of op time, {us:,.1f} µs per {per}"
    if cause == "batchnorm":
        between = f"`{convs[0]}` and its {op}" if n == 1 else f"each conv and its {op}"
        return (f"{n} {op} after BatchNorm ({stake}): BatchNormalization between {between} "
                f"blocks Grappler's Conv+BiasAdd+{op} fusion (Keras 3 lowers BatchNorm to "
                f"Mul/Add); folding BN into the conv for inference lets it fuse. Sites: {names}")
    if cause == "batchnorm_depthwise":
        return (f"{n} {op} after BatchNorm after a depthwise conv ({stake}): folding BN into "
                f"the DepthwiseConv2D removes the BatchNorm arithmetic, but {evidence}, so the "
                f"{op} stays a separate op. Sites: {names}")
    if cause == "spelling":
        what = "ReLU" if kind in K.RELU_SPELLINGS else kind
        text = f"{n} {what} written as {SPELLING[kind]} ({stake}): write it as {SPELLED_AS[kind]}"
        if kind in SPELLING_COST:
            text += f"; {SPELLING_COST[kind]}"
        return text + f". Sites: {names}"
    if cause == "not_fused":
        return (f"{n} {op} ran separately right after a Conv2D/MatMul ({stake}); {evidence}, "
                f"so something here blocks Grappler's remapper: another op reading the "
                f"pre-activation, training mode, or an op in between. Sites: {names}")
    return (f"{n} XLA fusion kernel(s) hold only the activation ({stake}): compile the layer "
            f"that produces its input in the same jit_compile function to fuse them. "
            f"Sites: {names}")


def recommend(events: pd.DataFrame, records: list[dict], context: pd.DataFrame, total_us: float,
              steps: int, fuses_here: dict[str, bool] | None = None) -> list[dict]:
    """Grouped advice for the separate activations: dicts of text, cause, kind, sites (their
    `scope/op`), pct (of all ops' CPU time), us_per_step (µs per outermost step event, or per
    trace when it has none: then `per` is "trace"), largest first."""
    fusable = {(k, family): LAB_EVIDENCE.format(kind=k)
               for k, v in (fuses_here or LAB_FUSION).items() if v for family in ("conv", "matmul")}
    for r in records:  # fused elsewhere in this trace
        family = _family(r["op"])
        if r["fused"] is True and family and (r["kind"], family) not in fusable:
            fusable[(r["kind"], family)] = (f"this trace has a {r['kind']} fused into "
                                           f"`{r['op']}` at `{r['scope']}`")
    feeders: _Feeders | None = None
    groups: dict[tuple[str, str], list[tuple[dict, str, str]]] = {}
    for r, ctx in zip(records, context.itertuples(index=False), strict=True):
        if r["fused"] is not False or not r["pct"]:
            continue
        if ctx.framework == "xla":
            found = ("xla_separate", "", "")
        elif ctx.framework != "tf" or ctx.first_row < 0:
            continue
        else:
            feeders = feeders or _Feeders(events)  # built once, only for a TF trace
            found = _cause(feeders, r, ctx, fusable)
        if found is not None:
            groups.setdefault((found[0], r["kind"]), []).append((r, found[1], found[2]))
    per = "step" if steps > 0 else "trace"
    out = []
    for (cause, kind), members in groups.items():
        rows = [r for r, _, _ in members]
        pct = float(sum(r["pct"] for r in rows))
        if pct < NEGLIGIBLE_PCT:
            continue
        us = float(sum(r["self_us"] for r in rows)) / (steps or 1)
        out.append({"text": _text(cause, kind, rows, [c for _, c, _ in members], members[0][2],
                                  pct, us, per),
                    "cause": cause, "kind": kind, "sites": [_where(r) for r in rows],
                    "feeds": sorted({c for _, c, _ in members if c}), "pct": pct,
                    "us_per_step": us, "per": per})
    return sorted(out, key=lambda a: -a["pct"])
