"""Pure Plotly figures for scenarios, distributed runs and remote captures.

DataFrame in, Figure out; labels, addresses and op names are escaped with
`charts.display_text` so Plotly shows them literally.

Inputs are the DataFrames of `profiling.experiments.scenarios.ScenarioResult`,
`profiling.experiments.distributed.DistributedResult` and `profiling.experiments.capture.CaptureResult`.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from profiling.presentation.charts import BREAKDOWN_COLOURS, display_text, empty_figure
from profiling.presentation.units import MISSING, format_time_range

LINE_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
LINE_MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "cross")
STEP_COLORS = {"train": "#1f77b4", "inference": "#ff7f0e"}
# The Compare page's breakdown colours, so a category looks the same on every page.
CATEGORY_COLORS = {part.removesuffix("_us"): colour for part, colour in BREAKDOWN_COLOURS.items()}
CATEGORY_COLORS.update(transfer=CATEGORY_COLORS["memcpy"], input="#8c564b")


def _ci_bars(part: pd.DataFrame, prefix: str = "", scale: float = 1e3) -> dict:
    """Asymmetric error bars from {prefix}ci95_low_s to {prefix}ci95_high_s around
    {prefix}median_s (times `scale`); none where the CI is not stored. A median's CI is a pair
    of samples, so the bar never reaches below the fastest sample, let alone 0; IQR drawn
    symmetrically around the median could."""
    low, high = f"{prefix}ci95_low_s", f"{prefix}ci95_high_s"
    if low not in part or high not in part:
        return {"visible": False}
    med = part[f"{prefix}median_s"] * scale
    return {"type": "data", "symmetric": False, "visible": True,
            "array": list((part[high] * scale - med).clip(lower=0)),
            "arrayminus": list((med - part[low] * scale).clip(lower=0))}


def step_time_figure(summary: pd.DataFrame, title: str = "Step time per variant") -> go.Figure:
    """Grouped bars: median training and inference step (ms) per variant, with the median's
    95% CI as asymmetric error bars (from ci95_low_s to ci95_high_s, never past them; below 6
    repeats no order-statistic interval reaches 95%, and the stored one is min..max)."""
    ok = summary[summary["status"] == "ok"] if "status" in summary else summary
    if ok.empty:
        return empty_figure(title, "no variant ran")
    fig = go.Figure()
    for step, key in (("train", "train"), ("inference", "infer")):
        fig.add_bar(
            name=step, x=[display_text(v) for v in ok["label"]],
            y=list(ok[f"{key}_median_s"] * 1e3), error_y=_ci_bars(ok, f"{key}_"),
            marker_color=STEP_COLORS[step],
            hovertemplate="%{x}<br>" + step + " median %{y:.3f} ms<extra></extra>",
        )
    fig.update_layout(title=title, barmode="group", xaxis_title="variant",
                      yaxis_title="median step (ms); bar = 95% CI (min-max < 6 repeats)")
    return fig


def separate_text(kernels: object, elsewhere: str) -> str:
    """What a site that did not fuse ran: its own ops, else those its variant ran at its other
    sites (the trace missed this one's), else that the trace holds none."""
    if isinstance(kernels, str) and kernels:
        return f"separate: {kernels}"
    if elsewhere:
        return f"separate: {elsewhere} (as at its other sites; not traced here)"
    return "separate: no op of this layer in the trace"


def fusion_figure(fusion: pd.DataFrame, title: str = "Activation fused into conv/matmul?"
                  ) -> go.Figure:
    """Heatmap: activation site (rows) x variant (columns); 1 = fused, 0 = ran as its own ops."""
    if fusion.empty:
        return empty_figure(title, "no trace read (tracing off or no variant ran)")
    labels = list(dict.fromkeys(fusion["label"]))
    sites = list(dict.fromkeys(fusion["site"]))
    table = fusion.set_index(["site", "label"])
    # A site whose op the trace missed (too short to record, or named outside the layer's
    # scope) still names the op its variant ran at its other sites.
    seen = {label: ",".join(sorted({k for ks in part["kernels"].fillna("") for k in
                                    str(ks).split(",") if k}))
            for label, part in fusion.groupby("label", sort=False)}
    z, text = [], []
    for site in sites:
        z_row, t_row = [], []
        for label in labels:
            if (site, label) not in table.index:
                z_row.append(None)
                t_row.append("")
                continue
            r = table.loc[(site, label)]
            z_row.append(1 if bool(r["fused"]) else 0)
            t_row.append(f"fused: {r['fused_into']}" + (f" + {r['kernels']}" if r["kernels"]
                                                           else "")
                         if bool(r["fused"]) else separate_text(r["kernels"], seen[label]))
        z.append(z_row)
        text.append(t_row)
    kinds = fusion.drop_duplicates("site").set_index("site")["kind"]
    fig = go.Figure(go.Heatmap(
        z=z, x=[display_text(v) for v in labels],
        y=[display_text(f"{s} ({kinds[s]})") for s in sites],
        text=[[display_text(t) for t in row] for row in text],
        texttemplate="%{text}", zmin=0, zmax=1, showscale=False,
        colorscale=[[0, "#f4cccc"], [1, "#b6d7a8"]],
        hovertemplate="%{y}<br>%{x}<br>%{text}<extra></extra>",
    ))
    fig.update_layout(title=title, xaxis_title="variant", yaxis_title="activation site",
                      yaxis={"autorange": "reversed"})
    return fig


def coinciding(losses: pd.DataFrame) -> list[list[str]]:
    """Groups of labels (two or more) whose loss curves are identical, step for step."""
    curves: dict[tuple, list[str]] = {}
    for label, part in losses.groupby("label", sort=False):
        key = tuple(zip(part["step"], part["loss"].round(12), strict=True))
        curves.setdefault(key, []).append(str(label))
    return [labels for labels in curves.values() if len(labels) > 1]


def loss_figure(losses: pd.DataFrame, title: str = "Training loss (same data, same init)"
                ) -> go.Figure:
    """One line per variant: loss per training step, each with its own dash and marker so
    lines on top of each other stay visible; identical curves are said in a note."""
    if losses.empty:
        return empty_figure(title, "no variant trained")
    fig = go.Figure()
    for i, (label, part) in enumerate(losses.groupby("label", sort=False)):
        fig.add_scatter(x=list(part["step"]), y=list(part["loss"]), mode="lines+markers",
                        name=display_text(label),
                        line={"dash": LINE_DASHES[i % len(LINE_DASHES)]},
                        marker={"symbol": LINE_MARKERS[i % len(LINE_MARKERS)], "size": 7})
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss", yaxis_type="log")
    same = coinciding(losses)
    if same:
        note = "; ".join(", ".join(group) for group in same)
        fig.add_annotation(text=display_text(f"identical losses, lines on top of each other: "
                                             f"{note}"),
                           xref="paper", yref="paper", x=0, y=1.02, showarrow=False,
                           xanchor="left", yanchor="bottom", font={"size": 11})
    return fig


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """ScenarioResult.summary for reading: one row per variant with readable headers, step
    medians in ``*_s`` columns (for units.readable), their 95% CIs as text, fused sites as
    'fused/fusable', loss, parameters and the reason a variant did not run."""
    def ci(prefix: str) -> list[str]:
        low, high = f"{prefix}_ci95_low_s", f"{prefix}_ci95_high_s"
        if low not in summary or high not in summary:
            return [MISSING] * len(summary)
        return [format_time_range(a, b) for a, b in zip(summary[low], summary[high], strict=True)]

    def column(name: str) -> pd.Series:
        return summary[name] if name in summary else pd.Series([None] * len(summary),
                                                               index=summary.index)

    fused = [f"{int(f)}/{int(n)}" if pd.notna(n) and pd.notna(f) else MISSING
             for f, n in zip(column("fused_sites"), column("fusable_sites"), strict=True)]
    return pd.DataFrame({
        "variant": column("label").astype(str), "status": column("status").astype(str),
        "train step_s": pd.to_numeric(column("train_median_s"), errors="coerce"),
        "train 95% CI": ci("train"),
        "inference step_s": pd.to_numeric(column("infer_median_s"), errors="coerce"),
        "inference 95% CI": ci("infer"),
        "fused sites": fused, "fused into": column("fused_into").fillna("").astype(str),
        "activation ops": column("activation_kernels").fillna("").astype(str),
        "final loss": pd.to_numeric(column("final_loss"), errors="coerce"),
        "loss vs baseline": pd.to_numeric(column("loss_vs_baseline"), errors="coerce"),
        "params": column("params").fillna("").astype(str).replace("{}", ""),
        "reason": column("reason").fillna("").astype(str),
    }).reset_index(drop=True)


def compute_comm_figure(workers: pd.DataFrame, title: str = "Compute vs communication"
                        ) -> go.Figure:
    """Stacked bars per worker: the traced steps' wall time (ms) in compute, collective,
    memcpy, other (profiling.traces.breakdown, the same numbers as trace-summary)."""
    if workers.empty:
        return empty_figure(title, "no worker result")
    names = [display_text(f"worker {w} ({s})")
             for w, s in zip(workers["worker"], workers["strategy"], strict=True)]
    fig = go.Figure()
    for category in ("compute", "collective", "memcpy", "other"):
        column = f"{category}_us"
        if column in workers:
            fig.add_bar(name=category, x=names, y=list(workers[column].fillna(0) / 1e3),
                        marker_color=CATEGORY_COLORS[category])
    fig.update_layout(title=title, barmode="stack", xaxis_title="worker",
                      yaxis_title="time in the traced steps (ms)")
    return fig


def capture_breakdown_figure(traces: pd.DataFrame, title: str = "Captured time by category"
                             ) -> go.Figure:
    """Stacked bars per captured worker: compute, memcpy, collective, other (ms)."""
    ok = traces[traces["status"] == "ok"] if "status" in traces else traces
    if ok.empty:
        return empty_figure(title, "no worker returned events")
    fig = go.Figure()
    for category in ("compute", "collective", "memcpy", "other"):
        fig.add_bar(name=category, x=[display_text(a) for a in ok["address"]],
                    y=list(ok[f"{category}_us"].fillna(0) / 1e3),
                    marker_color=CATEGORY_COLORS[category])
    fig.update_layout(title=title, barmode="stack", xaxis_title="worker",
                      yaxis_title="time in the capture (ms)")
    return fig


def top_ops_figure(top_ops: pd.DataFrame, top: int = 15, title: str = "Top ops by self time"
                   ) -> go.Figure:
    """Horizontal bars: the `top` ops by self time (ms), one trace per worker address."""
    if top_ops.empty:
        return empty_figure(title, "no ops")
    fig = go.Figure()
    for address, part in top_ops.groupby("address", sort=False):
        part = part.nlargest(top, "self_us")
        fig.add_bar(name=display_text(address), y=[display_text(n) for n in part["name"]],
                    x=list(part["self_us"] / 1e3), orientation="h")
    fig.update_layout(title=title, barmode="group", xaxis_title="self time (ms)",
                      yaxis={"autorange": "reversed"})
    return fig


# --- the guide's scenarios (profiling.experiments.guide_scenarios.GuideResult) ---------------------------


def mode_step_time_figure(summary: pd.DataFrame, title: str = "Training step time by mode"
                          ) -> go.Figure:
    """Grouped bars: median step (ms) per variant label, one bar group per mode (policy,
    float/qat...), asymmetric 95% CI error bars."""
    ok = summary[(summary["status"] == "ok") & summary["median_s"].notna()] \
        if "median_s" in summary else summary.iloc[0:0]
    if ok.empty:
        return empty_figure(title, "no case ran")
    fig = go.Figure()
    for mode, part in ok.groupby("mode", sort=False):
        fig.add_bar(name=display_text(mode), x=[display_text(v) for v in part["label"]],
                    y=list(part["median_s"] * 1e3), error_y=_ci_bars(part),
                    hovertemplate="%{x}<br>median %{y:.3f} ms<extra>" + display_text(mode)
                    + "</extra>")
    fig.update_layout(title=title, barmode="group", xaxis_title="variant",
                      yaxis_title="median step time (ms; error bar = 95% CI)")
    return fig


def batch_sweep_figure(summary: pd.DataFrame, title: str = "Training throughput by batch size"
                       ) -> go.Figure:
    """Lines: samples/s against batch size (log x) per variant, 95% CI error bars."""
    ok = summary[(summary["status"] == "ok")] if "samples_per_s" in summary else summary.iloc[0:0]
    if ok.empty:
        return empty_figure(title, "no batch size ran")
    fig = go.Figure()
    for label, part in ok.groupby("label", sort=False):
        part = part.sort_values("batch")
        fig.add_scatter(x=list(part["batch"]), y=list(part["samples_per_s"]), mode="lines+markers",
                        name=display_text(label),
                        error_y={"type": "data", "symmetric": False, "visible": True,
                                 "array": list(part["samples_per_s_high"] - part["samples_per_s"]),
                                 "arrayminus": list(part["samples_per_s"]
                                                    - part["samples_per_s_low"])})
    fig.add_vline(x=64, line_dash="dot", annotation_text="guide: batch ≥ 64")
    fig.update_layout(title=title, xaxis_type="log", xaxis_title="batch size",
                      yaxis_title="samples/s (error bar = 95% CI)")
    return fig


def sparsity_figure(layers: pd.DataFrame, title: str = "Exact zeros per activation layer"
                    ) -> go.Figure:
    """Grouped bars: fraction of exact zeros (0..1) per layer, one bar series per variant."""
    if layers.empty:
        return empty_figure(title, "no activation was read")
    fig = go.Figure()
    for label, part in layers.groupby("label", sort=False):
        fig.add_bar(name=display_text(label), x=[display_text(v) for v in part["layer"]],
                    y=list(part["zero_fraction"]))
    fig.update_layout(title=title, barmode="group", xaxis_title="activation layer",
                      yaxis_title="fraction of outputs exactly 0", yaxis_range=[0, 1])
    return fig


STORAGE_FORMATS = {"dense_bytes": "dense", "coo_bytes": "COO (tf.sparse)", "csr_bytes": "CSR",
                   "bitmask_bytes": "bitmask + values"}


def storage_figure(summary: pd.DataFrame, title: str = "Bytes to store the activations"
                   ) -> go.Figure:
    """Grouped bars per variant: bytes of every activation of one pass, dense vs sparse formats."""
    ok = summary[summary["status"] == "ok"] if "dense_bytes" in summary else summary.iloc[0:0]
    if ok.empty:
        return empty_figure(title, "no variant ran")
    fig = go.Figure()
    for column, name in STORAGE_FORMATS.items():
        fig.add_bar(name=name, x=[display_text(v) for v in ok["label"]],
                    y=list(ok[column] / 2**10))
    fig.update_layout(title=title, barmode="group", xaxis_title="variant",
                      yaxis_title="KiB for one pass over the training data")
    return fig


def guide_figures(kind: str, summary: pd.DataFrame, layers: pd.DataFrame,
                  extra: dict[str, pd.DataFrame]) -> list[go.Figure]:
    """The figures of one guide scenario result, in display order."""
    if kind == "batch_sweep":
        return [batch_sweep_figure(summary)]
    if kind == "sparsity":
        return [sparsity_figure(layers), storage_figure(summary)]
    losses = extra.get("losses", pd.DataFrame())
    timed = summary[summary["mode"] != "int8_path"] if "mode" in summary else summary
    figures = [mode_step_time_figure(timed)]
    if len(losses):
        labelled = losses.assign(label=losses["label"] + " · " + losses["mode"])
        figures.append(loss_figure(labelled, "Training loss by mode (same data, same init)"))
    if kind == "qat" and "mode" in summary:
        figures.append(mode_step_time_figure(summary[summary["mode"] == "int8_path"],
                                             "INT8 path: forward time (ms)"))
    return figures
