"""A model run in a person's words: the rewrites' table and the one decision it supports.

Pure functions of the `model --json` result, shared by the CLI, the Model page and the report.
A rewrite is recommended only when its speedup's whole 95% CI lies above 1 + threshold and its
outputs match the original's within the rewrite's tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from profiling.presentation import units
from profiling.presentation.charts import display_text, empty_figure

DEFAULT_THRESHOLD = 0.05
WHAT = {"fold_bn": "fold BatchNorm into the convolutions for inference",
        "xla": "compile the step with XLA (jit_compile=True)",
        "mixed_bfloat16": "run under the mixed_bfloat16 policy"}


def format_speedup(speedup: Any, low: Any, high: Any) -> str:
    """'1.48× [1.41, 1.55]' (units.MISSING when not measured)."""
    if speedup is None:
        return units.MISSING
    return f"{speedup:.2f}× [{low:.2f}, {high:.2f}]"


def describe(name: str) -> str:
    """What a rewrite does, as an instruction."""
    if name.startswith("swap:"):
        kind, _, variant = name[len("swap:"):].partition("=")
        return f"compute every {kind} as {variant}"
    return WHAT.get(name, name)


def verdict(r: dict[str, Any], threshold: float = DEFAULT_THRESHOLD) -> str:
    """faster / slower / not resolved / failed, by the CI against 1 ± threshold."""
    if r.get("status") != "ok" or r.get("speedup") is None:
        return "failed"
    if r["ci95_low"] > 1 + threshold:
        return "faster"
    if r["ci95_high"] < 1 - threshold:
        return "slower"
    return "not resolved"


def rewrite_table(rewrites: Sequence[dict[str, Any]], threshold: float = DEFAULT_THRESHOLD
                  ) -> pd.DataFrame:
    """One row per rewrite, largest speedup first: speedup [CI], verdict, output differences,
    activations fused after it, step memory, and the reason of a failure."""
    rows = []
    for r in sorted(rewrites, key=lambda r: -(r.get("speedup") or 0.0)):
        fused = r.get("activations_fused_after")
        after = r.get("activations_after")
        unplaced = r.get("activations_unplaced_after") or 0
        rows.append({
            "rewrite": r["name"],
            "speedup [95% CI]": format_speedup(r.get("speedup"), r.get("ci95_low"),
                                               r.get("ci95_high")),
            "verdict": verdict(r, threshold),
            "max |Δ|": units.format_scientific(r.get("max_abs_diff")),
            "max rel. Δ": units.format_scientific(r.get("max_rel_diff")),
            "fused after": units.MISSING if fused is None else f"{fused} of {after}"
            + (f" ({unplaced} not placed in the trace)" if unplaced else ""),
            "step memory": units.format_bytes(r.get("peak_memory_bytes")),
            "reason": r.get("reason") or "",
        })
    return pd.DataFrame(rows)


def decision(result: dict[str, Any], threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """What to do, in one sentence per measured conclusion (the best rewrite first)."""
    out = []
    good = [r for r in result.get("rewrites", []) if verdict(r, threshold) == "faster"]
    for r in sorted(good, key=lambda r: -r["speedup"]):
        out.append(f"{describe(r['name'])}: {format_speedup(r['speedup'], r['ci95_low'], r['ci95_high'])}"
                   f", max |Δ| {units.format_scientific(r['max_abs_diff'], 1)}")
    if not out:
        measured = [r for r in result.get("rewrites", []) if r.get("status") == "ok"]
        out.append("no rewrite was measurably faster here" if measured
                   else "no rewrite was measured")
    return out


VERDICT_COLOURS = {"faster": "#2ca02c", "slower": "#d62728", "not resolved": "#7f7f7f"}


def speedup_figure(rewrites: Sequence[dict[str, Any]], threshold: float = DEFAULT_THRESHOLD
                   ) -> go.Figure:
    """Each measured rewrite's speedup over the original with its 95% CI as whiskers, coloured
    by verdict, the no-change line at 1 and the threshold band around it; the hover gives the
    output difference."""
    measured = [r for r in rewrites if r.get("speedup") is not None]
    if not measured:
        return empty_figure("Speedup of each rewrite over the original",
                            "no rewrite was measured")
    measured = sorted(measured, key=lambda r: r["speedup"])
    figure = go.Figure()
    for r in measured:
        v = verdict(r, threshold) if r.get("status") == "ok" else "not resolved"
        figure.add_trace(go.Scatter(
            x=[r["speedup"]], y=[display_text(r["name"])], mode="markers",
            marker={"size": 11, "color": VERDICT_COLOURS.get(v, "#7f7f7f"),
                    "symbol": "circle" if r.get("status") == "ok" else "x"},
            error_x={"type": "data", "symmetric": False,
                     "array": [r["ci95_high"] - r["speedup"]],
                     "arrayminus": [r["speedup"] - r["ci95_low"]]},
            name=display_text(f"{r['name']}: {v}"),
            hovertemplate=display_text(
                f"{r['name']}<br>speedup {format_speedup(r['speedup'], r['ci95_low'], r['ci95_high'])}"
                f"<br>max |Δ| {units.format_scientific(r.get('max_abs_diff'))}, max rel. Δ "
                f"{units.format_scientific(r.get('max_rel_diff'))}<br>{v}") + "<extra></extra>"))
    figure.add_vrect(x0=1 - threshold, x1=1 + threshold, fillcolor="#cccccc", opacity=0.3,
                     line_width=0)
    figure.add_vline(x=1, line_dash="dash", line_color="#555555")
    figure.update_layout(title="Speedup of each rewrite over the original (t_original / "
                               "t_rewrite; whiskers: 95% CI; band: ±threshold)",
                         xaxis_title="speedup (above 1 is faster)", yaxis_title="",
                         height=140 + 40 * len(measured), showlegend=True,
                         margin={"l": 10, "r": 10, "t": 60, "b": 40})
    return figure


def layer_table(activations: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The per-layer table a person reads: layer, kind, fused, time, % of step, cause."""
    rows = []
    for a in activations:
        fused = a.get("fused")
        rows.append({
            "layer": a.get("layer"), "kind": a.get("kind"),
            "fused": "yes" if fused is True else "no" if fused is False else "not in trace",
            "time per step": units.format_time(None if a.get("time_us") is None
                                               else a["time_us"] / 1e6),
            "% of step": units.format_percent(None if a.get("pct") is None
                                              else a["pct"] / 100),
            "cause": a.get("cause", ""),
        })
    return pd.DataFrame(rows)
