"""Pure chart and table functions: a DataFrame in, a Plotly figure (or a DataFrame/Styler) out.

Inputs follow the store's column contract (``Store.cases``, ``Store.breakdown``,
``Store.fusion``, ``Trace.events``, ``summarize()["top_ops"]``). Nothing here reads files,
touches Streamlit or imports TensorFlow, so the dashboard and the HTML report draw the same
figures and tests can check them on synthetic frames.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Dimensions that, besides the variant label, tell two measured series apart.
SETTING_COLUMNS = ("dtype", "device", "threads", "allocator", "mode", "pass")
BREAKDOWN_PARTS = ("compute_us", "memcpy_us", "collective_us", "idle_us", "other_us")
BREAKDOWN_COLOURS = {
    "compute_us": "#2a9d8f",
    "memcpy_us": "#e9c46a",
    "collective_us": "#f4a261",
    "idle_us": "#bcbcbc",
    "other_us": "#8d99ae",
}
# Ratio-to-best thresholds (upper bound inclusive) in the spirit of torch.utils.benchmark.Compare,
# which also marks as best anything within 1% of the fastest (a tie within the noise).
COMPARE_CATEGORIES = (
    ("best", 1.01),
    ("within 10%", 1.10),
    ("slower", 2.0),
    ("2x worse", 5.0),
    ("5x worse", math.inf),
)
COMPARE_COLOURS = {
    "best": "background-color: #1b7f3b; color: white; font-weight: bold",
    "within 10%": "background-color: #b7e4c7",
    "slower": "",
    "2x worse": "background-color: #f9c6a8",
    "5x worse": "background-color: #e76f51; color: white",
}
EMPTY_MESSAGE = "No successful cases to show"


def display_text(text: object) -> str:
    """Escape a user-supplied label so Plotly shows it literally (no pseudo-HTML tags)."""
    return html.escape(str(text), quote=False)


def ok_cases(cases: pd.DataFrame) -> pd.DataFrame:
    """Rows with status ``ok`` and a finite positive median time, sorted by size."""
    if cases.empty:
        return cases.copy()
    frame = cases[cases["status"] == "ok"].copy()
    frame = frame[np.isfinite(frame["median_s"].astype(float)) & (frame["median_s"] > 0)]
    return frame.sort_values("numel", kind="stable")


FAILED_CASE_COLUMNS = ("label", "shape", "dtype", "mode", "pass", "status", "reason")


def failed_cases(cases: pd.DataFrame) -> pd.DataFrame:
    """The cases that were skipped or failed (status other than ``ok``), with why."""
    if cases.empty:
        return pd.DataFrame(columns=list(FAILED_CASE_COLUMNS))
    failed = cases[cases["status"] != "ok"]
    return failed[[c for c in FAILED_CASE_COLUMNS if c in failed.columns]]


def varying_settings(cases: pd.DataFrame) -> list[str]:
    """The setting columns that take more than one value in ``cases`` (order kept)."""
    columns = [c for c in SETTING_COLUMNS if c in cases.columns]
    if "run_id" in cases.columns and _label_repeats_across_runs(cases):
        columns.append("run_id")
    return [c for c in columns if cases[c].astype(str).nunique() > 1]


def _label_repeats_across_runs(cases: pd.DataFrame) -> bool:
    if cases["run_id"].nunique() < 2:
        return False
    return bool((cases.groupby("label")["run_id"].nunique() > 1).any())


def series_names(cases: pd.DataFrame) -> pd.Series:
    """One legend name per row: the variant label plus the settings that vary, e.g.
    ``leaky(alpha=0.2) · function · float32``."""
    extra = varying_settings(cases)
    names = cases["label"].astype(str)
    for column in extra:
        values = cases[column].astype(str)
        if column == "threads":
            values = values + " threads"
        elif column == "run_id":
            values = "run " + values.str.slice(0, 8)
        names = names + " · " + values
    return names


def empty_figure(title: str, message: str = EMPTY_MESSAGE) -> go.Figure:
    """A titled figure with no data, hidden axes and ``message`` in the middle."""
    figure = go.Figure()
    figure.update_layout(
        title=title,
        annotations=[dict(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)],
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
    )
    return figure


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str, **axes) -> go.Figure:
    figure.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        hovermode="closest",
        legend=dict(title=None),
        margin=dict(l=60, r=20, t=50, b=50),
        **axes,
    )
    return figure


def _colour(index: int) -> str:
    palette = (
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    )
    return palette[index % len(palette)]


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def latency_vs_size(cases: pd.DataFrame) -> go.Figure:
    """Median time per call (µs) against element count, log-log, one line per series with a
    shaded 95% confidence band (``ci95_low_s``..``ci95_high_s``)."""
    title = "Latency vs size"
    frame = ok_cases(cases)
    if frame.empty:
        return empty_figure(title)
    frame["series"] = series_names(frame)
    figure = go.Figure()
    for index, (name, group) in enumerate(frame.groupby("series", sort=False)):
        colour = _colour(index)
        low = group["ci95_low_s"].fillna(group["median_s"]) * 1e6
        high = group["ci95_high_s"].fillna(group["median_s"]) * 1e6
        figure.add_trace(
            go.Scatter(
                x=list(group["numel"]) + list(group["numel"])[::-1],
                y=list(high) + list(low)[::-1],
                mode="lines",
                fill="toself",
                fillcolor=_rgba(colour, 0.18),
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=display_text(name),
                name=f"{display_text(name)} 95% CI",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=group["numel"],
                y=group["median_s"] * 1e6,
                mode="lines+markers",
                line=dict(color=colour),
                name=display_text(name),
                legendgroup=display_text(name),
                customdata=np.stack([group["shape"].astype(str), low, high], axis=-1),
                hovertemplate=(
                    "%{customdata[0]}<br>median %{y:.3g} µs"
                    "<br>95% CI %{customdata[1]:.3g}–%{customdata[2]:.3g} µs<extra>%{fullData.name}</extra>"
                ),
            )
        )
    return _layout(
        figure, title, "elements", "median time per call (µs)",
        xaxis_type="log", yaxis_type="log",
    )


def calibrated_peak_gbps(cases: pd.DataFrame) -> float | None:
    """The calibrated memory-bandwidth ceiling (GB/s) recorded with the cases, if any."""
    if "peak_gbps" not in cases.columns:
        return None
    peaks = pd.to_numeric(cases["peak_gbps"], errors="coerce").dropna()
    peaks = peaks[peaks > 0]
    return float(peaks.max()) if not peaks.empty else None


def effective_bandwidth(cases: pd.DataFrame) -> go.Figure:
    """Effective GB/s (bytes read + written per call / median time) against element count,
    log x, with the calibrated peak drawn as a dashed roofline-style ceiling."""
    title = "Effective memory bandwidth"
    figure = _metric_vs_size(cases, "gbps", title, "effective GB/s", unit=" GB/s")
    if not figure.data:
        return figure
    frame = ok_cases(cases)
    frame = frame[pd.to_numeric(frame["gbps"], errors="coerce").notna()]
    peak = calibrated_peak_gbps(frame)
    if peak is not None:
        figure.add_trace(
            go.Scatter(
                x=[frame["numel"].min(), frame["numel"].max()], y=[peak, peak],
                mode="lines", line=dict(color="black", dash="dash"),
                name=f"calibrated peak {peak:.3g} GB/s",
                hovertemplate="calibrated peak %{y:.3g} GB/s<extra></extra>",
            )
        )
    return figure


def speedup_table(cases: pd.DataFrame, baseline: str = "nn_relu") -> pd.DataFrame:
    """Speedup of each series over the baseline variant at the same shape and settings.

    ``speedup = baseline median / variant median`` (>1 means faster than the baseline);
    ``speedup_low``/``speedup_high`` combine both 95% CIs (worst/best case ratio);
    ``significant`` is False where the two CIs overlap. Columns: the case keys, ``series``,
    ``speedup``, ``speedup_low``, ``speedup_high``, ``significant``.
    """
    frame = ok_cases(cases)
    columns = ["series", "label", "variant", "shape", "numel", "speedup", "speedup_low",
               "speedup_high", "significant"]
    if frame.empty or baseline not in set(frame["variant"]):
        return pd.DataFrame(columns=columns)
    frame["series"] = series_names(frame)
    keys = ["shape"] + [c for c in SETTING_COLUMNS if c in frame.columns]
    if "run_id" in frame.columns and frame["run_id"].nunique() > 1:
        keys.append("run_id")
    base = frame[frame["variant"] == baseline]
    base = base.groupby(keys, dropna=False, as_index=False).first()
    base = base[keys + ["median_s", "ci95_low_s", "ci95_high_s"]].rename(
        columns={"median_s": "base_s", "ci95_low_s": "base_low_s", "ci95_high_s": "base_high_s"}
    )
    others = frame[frame["variant"] != baseline]
    merged = others.merge(base, on=keys, how="inner")
    if merged.empty:
        return pd.DataFrame(columns=columns)
    low = merged["ci95_low_s"].fillna(merged["median_s"])
    high = merged["ci95_high_s"].fillna(merged["median_s"])
    base_low = merged["base_low_s"].fillna(merged["base_s"])
    base_high = merged["base_high_s"].fillna(merged["base_s"])
    merged["speedup"] = merged["base_s"] / merged["median_s"]
    merged["speedup_low"] = base_low / high
    merged["speedup_high"] = base_high / low
    overlap = (low <= base_high) & (base_low <= high)
    merged["significant"] = ~overlap
    return merged[columns + keys[1:]].sort_values(["series", "numel"], kind="stable")


def speedup_vs_baseline(cases: pd.DataFrame, baseline: str = "nn_relu") -> go.Figure:
    """Speedup over ``baseline`` against element count (log x) with CI whiskers; points whose
    CIs overlap the baseline's (difference not significant) are drawn as open circles."""
    title = f"Speedup vs {display_text(baseline)} (>1 is faster)"
    table = speedup_table(cases, baseline)
    if table.empty:
        return empty_figure(title, f"No cases to compare with baseline {display_text(baseline)}")
    figure = go.Figure()
    for index, (name, group) in enumerate(table.groupby("series", sort=False)):
        symbols = np.where(group["significant"], "circle", "circle-open")
        figure.add_trace(
            go.Scatter(
                x=group["numel"], y=group["speedup"], mode="lines+markers",
                name=display_text(name), line=dict(color=_colour(index)),
                marker=dict(symbol=list(symbols), size=10),
                error_y=dict(
                    type="data", symmetric=False,
                    array=group["speedup_high"] - group["speedup"],
                    arrayminus=group["speedup"] - group["speedup_low"],
                ),
                customdata=np.stack(
                    [group["shape"].astype(str),
                     np.where(group["significant"], "significant", "not significant (CIs overlap)")],
                    axis=-1,
                ),
                hovertemplate="%{customdata[0]}<br>%{y:.3g}x — %{customdata[1]}"
                              "<extra>%{fullData.name}</extra>",
            )
        )
    if not table["significant"].all():
        # A legend entry explaining the open markers.
        figure.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name="not significant (CIs overlap)",
                marker=dict(symbol="circle-open", size=10, color="black"),
            )
        )
    figure.add_hline(y=1.0, line=dict(color="grey", dash="dot"))
    # Log y: 2x faster and 2x slower sit at the same distance from 1.
    return _layout(figure, title, "elements", f"speedup vs {display_text(baseline)}",
                   xaxis_type="log", yaxis_type="log")


def utilization(cases: pd.DataFrame) -> go.Figure:
    """Fraction of the calibrated peak bandwidth reached (%), against element count (log x)."""
    figure = _metric_vs_size(
        cases, "utilization", "Bandwidth utilization", "% of calibrated peak", scale=100.0)
    if figure.data:
        # Above 100% happens honestly when the tensors fit in cache and the peak was calibrated
        # on DRAM-sized buffers, so the axis is not clipped at 100.
        figure.update_yaxes(rangemode="tozero")
        figure.add_hline(y=100.0, line=dict(color="black", dash="dash"),
                         annotation_text="calibrated peak", annotation_position="top left")
    return figure


def page_faults(cases: pd.DataFrame) -> go.Figure:
    """Page faults per call against element count (log x)."""
    return _metric_vs_size(cases, "page_faults_per_call", "Page faults per call", "faults per call")


def _metric_vs_size(
    cases: pd.DataFrame, column: str, title: str, y_title: str, scale: float = 1.0,
    unit: str = "",
) -> go.Figure:
    """One line per series of ``column`` (times ``scale``) against element count, log x; rows
    where ``column`` is missing or not a number are left out. ``unit`` follows hover values."""
    frame = ok_cases(cases)
    if not frame.empty and column in frame.columns:
        frame = frame[pd.to_numeric(frame[column], errors="coerce").notna()]
    if frame.empty or column not in frame.columns:
        return empty_figure(title)
    frame["series"] = series_names(frame)
    figure = go.Figure()
    for index, (name, group) in enumerate(frame.groupby("series", sort=False)):
        figure.add_trace(
            go.Scatter(
                x=group["numel"], y=group[column].astype(float) * scale, mode="lines+markers",
                line=dict(color=_colour(index)), name=display_text(name),
                customdata=group[["shape"]].astype(str),
                hovertemplate="%{customdata[0]}<br>%{y:.3g}" + unit
                              + "<extra>%{fullData.name}</extra>",
            )
        )
    return _layout(figure, title, "elements", y_title, xaxis_type="log")


def breakdown_bars(breakdown: pd.DataFrame, cases: pd.DataFrame) -> go.Figure:
    """Stacked bars per case: compute / memcpy / collective (communication) / idle / other, µs
    from the case's trace. ``breakdown`` has ``case_id`` + the five ``*_us`` columns."""
    title = "Time breakdown per case (from traces)"
    if breakdown.empty or cases.empty:
        return empty_figure(title, "No traces with a time breakdown in these runs")
    frame = cases.copy()
    frame["series"] = series_names(frame)
    frame["case"] = frame["series"] + " · " + frame["shape"].astype(str)
    merged = breakdown.merge(frame[["case_id", "case", "numel"]], on="case_id", how="inner")
    if merged.empty:
        return empty_figure(title, "No traces with a time breakdown in these runs")
    merged = merged.sort_values(["numel", "case"], kind="stable")
    figure = go.Figure()
    for part in BREAKDOWN_PARTS:
        if part not in merged.columns:
            continue
        figure.add_trace(
            go.Bar(
                x=[display_text(c) for c in merged["case"]], y=merged[part].fillna(0.0),
                name=part.removesuffix("_us"), marker_color=BREAKDOWN_COLOURS[part],
                hovertemplate="%{x}<br>%{y:.4g} µs<extra>%{fullData.name}</extra>",
            )
        )
    return _layout(figure, title, "case", "µs in trace", barmode="stack")


def compare_categories(cases: pd.DataFrame) -> pd.DataFrame:
    """Long table of every ok case with its ratio to the fastest series at the same shape and
    settings, and its category (best, within 10%, slower, 2x worse, 5x worse)."""
    frame = ok_cases(cases)
    columns = ["series", "label", "shape", "numel", *SETTING_COLUMNS, "median_us", "ci95_us",
               "ratio_to_best", "category"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["series"] = series_names(frame)
    frame["median_us"] = frame["median_s"] * 1e6
    frame["ci95_us"] = frame.get("ci95_s", pd.Series(np.nan, index=frame.index)) * 1e6
    group_keys = ["shape"] + [c for c in SETTING_COLUMNS if c in frame.columns]
    best = frame.groupby(group_keys, dropna=False)["median_s"].transform("min")
    frame["ratio_to_best"] = frame["median_s"] / best
    frame["category"] = frame["ratio_to_best"].map(compare_category)
    present = [c for c in columns if c in frame.columns]
    return frame[present].reset_index(drop=True)


def compare_category(ratio: float) -> str:
    """Category of a time ratio to the best (1.0 = best)."""
    for name, upper in COMPARE_CATEGORIES:
        if ratio <= upper:
            return name
    return COMPARE_CATEGORIES[-1][0]


def compare_table(cases: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide results table like ``torch.utils.benchmark.Compare``: one row per series, one
    column per shape (ascending size), median µs per cell; plus the same-shaped frame of
    categories used to colour it."""
    long = compare_categories(cases)
    if long.empty:
        return pd.DataFrame(), pd.DataFrame()
    shapes = list(dict.fromkeys(long.sort_values("numel", kind="stable")["shape"]))
    values = long.pivot_table(index="series", columns="shape", values="median_us", aggfunc="first")
    categories = long.pivot_table(index="series", columns="shape", values="category",
                                  aggfunc="first")
    order = list(dict.fromkeys(long["series"]))
    values = values.reindex(index=order, columns=shapes)
    categories = categories.reindex(index=order, columns=shapes)
    values.columns.name = categories.columns.name = "median µs per call"
    return values, categories


def format_us(value: float) -> str:
    """3 significant digits without exponent notation: 0.123, 12.3, 2,820."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def compare_styler(cases: pd.DataFrame):
    """``compare_table`` as a pandas Styler coloured by category (green best … red 5x worse).
    For st.dataframe (text cells); the HTML report builds its own escaped table."""
    values, categories = compare_table(cases)
    return values.style.format(format_us, na_rep="–").apply(
        lambda _: categories.map(lambda c: COMPARE_COLOURS.get(c, "") if isinstance(c, str) else ""),
        axis=None,
    )


def fusion_table(fusion: pd.DataFrame) -> pd.DataFrame:
    """Fusion results for display: did the ReLU fuse into Grappler's ``_FusedConv2D``/
    ``_FusedMatMul`` or into an XLA fusion, and what that costs in time."""
    columns = ["variant", "block", "fused", "fused_into", "kernels", "time_us", "time_vs_fused",
               "hlo_fusions", "instructions_before", "instructions_after", "compiled", "reason"]
    if fusion.empty:
        return pd.DataFrame(columns=columns)
    frame = fusion.copy()
    if "time_s" in frame.columns:
        frame["time_us"] = frame["time_s"] * 1e6
    return frame[[c for c in columns if c in frame.columns]].reset_index(drop=True)


SEMANTICS_PROPERTIES = ("nan", "neg_zero", "pos_inf", "neg_inf", "grad_at_zero",
                        "bitwise_equal_nn_relu")


def semantics_matrix(table: pd.DataFrame, dtype: str | None = None,
                     reference: str = "nn_relu") -> go.Figure:
    """Heatmap of edge-case behaviour (rows: variants, columns: NaN, -0, +inf, -inf, grad at 0,
    bitwise equal to nn_relu); cells that differ from ``reference`` are highlighted. Uses the
    rows of ``dtype`` (default: float32 if present, else the first dtype per variant)."""
    title = "Edge-case semantics (highlighted: differs from " + display_text(reference) + ")"
    if table.empty:
        return empty_figure(title, "No semantics table")
    frame = _one_dtype_per_variant(table, dtype)
    properties = [p for p in SEMANTICS_PROPERTIES if p in frame.columns]
    text = frame[properties].astype(str).to_numpy(dtype=object)
    is_reference = (frame["variant"] == reference).to_numpy()
    if not is_reference.any():
        differs = np.zeros(text.shape, dtype=float)
    else:
        differs = (text != text[is_reference][0]).astype(float)
    labels = [display_text(f"{v} ({d})") for v, d in zip(frame["variant"], frame["dtype"], strict=True)]
    figure = go.Figure(
        go.Heatmap(
            z=differs, x=list(properties), y=labels, text=np.vectorize(display_text, otypes=[object])(text),
            texttemplate="%{text}", colorscale=[[0, "#e8f4ea"], [1, "#f4a261"]],
            zmin=0, zmax=1, showscale=False, xgap=2, ygap=2,
            hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>",
        )
    )
    figure.update_layout(title=title, height=max(300, 40 * len(labels) + 120),
                         yaxis=dict(autorange="reversed"), margin=dict(l=160, r=20, t=50, b=40))
    return figure


def _one_dtype_per_variant(table: pd.DataFrame, dtype: str | None) -> pd.DataFrame:
    rows = []
    for _, group in table.groupby("variant", sort=False):
        pick = group[group["dtype"] == (dtype or "float32")]
        rows.append(pick.iloc[:1] if not pick.empty else group.iloc[:1])
    return pd.concat(rows, ignore_index=True)
