"""Pure chart and table functions: a DataFrame in, a Plotly figure (or a DataFrame/Styler) out.

Inputs follow the store's column contract (``Store.cases``, ``Store.breakdown``,
``Store.fusion``, ``Trace.events``, ``summarize()["top_ops"]``). Nothing here reads files,
touches Streamlit or imports TensorFlow, so the dashboard and the HTML report draw the same
figures and tests can check them on synthetic frames.
"""

from __future__ import annotations

import html
import math
import zlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from profiling.measurement.stats import RatioStats, ratio_stats, unpaired_ratio
from profiling.presentation.units import format_number, format_speedup, format_time
from profiling.traces.record import TRACE_STEPS

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
# The heat table's colours: a case against the baseline variant at the same shape, dtype,
# device, threads, allocator, mode and pass, by the one significance rule (RatioStats.change).
COMPARE_COLOURS = {
    "faster": "background-color: #b7e4c7",
    "slower": "background-color: #f9c6a8",
    "not resolved": "",
    "baseline": "background-color: #e8e8e8",
    "no baseline": "",
}
COMPARE_LEGEND = {
    "faster": "faster than the baseline: the speedup's 95% CI lies wholly above 1 + threshold",
    "slower": "slower: the CI lies wholly below 1 - threshold",
    "not resolved": "not resolved: the CI touches the threshold band (or is missing)",
    "baseline": "the baseline itself",
    "no baseline": "no baseline case with these settings",
}
EMPTY_MESSAGE = "No successful cases to show"
# A change smaller than this is "not resolved" even when the CI excludes 1 (a fraction: 5%).
DEFAULT_THRESHOLD = 0.05


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
    """The setting columns that take more than one value in ``cases`` (order kept); "run"
    when the same variant label appears in more than one run."""
    columns = [c for c in SETTING_COLUMNS if c in cases.columns]
    varying = [c for c in columns if cases[c].astype(str).nunique() > 1]
    if "run_id" in cases.columns and _label_repeats_across_runs(cases):
        varying.append("run")
    return varying


def _label_repeats_across_runs(cases: pd.DataFrame) -> bool:
    if cases["run_id"].nunique() < 2:
        return False
    return bool((cases.groupby("label")["run_id"].nunique() > 1).any())


def run_names(runs: pd.DataFrame) -> dict[str, str]:
    """A short unique name per run: its label (``--label``) when that is unique among these
    runs, else the part of its id that differs: the time and random suffix when all runs are
    of one day (ids read YYYYMMDD-HHMMSS-xxxxxx), the whole id otherwise; a label shared by
    several runs gets that id part appended."""
    frame = runs.drop_duplicates("run_id")
    ids = [str(r) for r in frame["run_id"]]
    labels = ([str(v) if isinstance(v, str) else "" for v in frame["run_label"]]
              if "run_label" in frame.columns else [""] * len(ids))
    days = {i.split("-", 1)[0] for i in ids}
    short = {i: (i.split("-", 1)[1] if len(days) == 1 and "-" in i else i) for i in ids}
    counts = pd.Series([lbl for lbl in labels if lbl]).value_counts()
    names = {}
    for run_id, label in zip(ids, labels, strict=True):
        if label and counts.get(label, 0) == 1:
            names[run_id] = label
        elif label:
            names[run_id] = f"{label} ({short[run_id]})"
        else:
            names[run_id] = short[run_id]
    return names


def series_names(cases: pd.DataFrame) -> pd.Series:
    """One legend name per row: the variant label plus the settings that vary, e.g.
    ``leaky(alpha=0.2) · function · float32``; with several runs of the same variant, the
    run's short unique name (``run_names``) too, so two runs never merge into one series."""
    extra = varying_settings(cases)
    names = cases["label"].astype(str)
    for column in extra:
        if column == "run":
            values = cases["run_id"].astype(str).map(run_names(cases))
            names = names + " · run " + values
            continue
        values = cases[column].astype(str)
        if column == "threads":
            values = values + " threads"
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
    # Long tick labels (the breakdown's case names) push the axis title out instead of over it.
    figure.update_xaxes(automargin=True, title_standoff=12)
    figure.update_yaxes(automargin=True)
    _readable_log_ticks(figure)
    return figure


def _readable_log_ticks(figure: go.Figure) -> None:
    """Log axes: over two decades or more, labels only at powers of ten (minor ticks unlabelled);
    over less, plain labels at 1, 2 and 5 of each decade (finer when that leaves fewer than
    three), so labels neither crowd nor shrink to a lone "5"."""
    for axis, letter in (("xaxis", "x"), ("yaxis", "y")):
        if getattr(figure.layout, axis).type != "log":
            continue
        values = []
        for trace in figure.data:
            data = getattr(trace, letter, None)
            if data is not None:
                values.extend(v for v in np.asarray(data, dtype=object).ravel() if v is not None)
        numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        numbers = numbers[np.isfinite(numbers) & (numbers > 0)]
        if numbers.empty:
            continue
        low, high = float(numbers.min()), float(numbers.max())
        if math.log10(high / low) >= 2:
            getattr(figure.layout, axis).update(
                dtick=1, exponentformat="power",
                minor=dict(dtick="D1", ticks="outside", showgrid=False))
            continue
        decades = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
        for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 8)):
            ticks = [m * 10.0**e for e in decades for m in mantissas
                     if low / 1.5 <= m * 10.0**e <= high * 1.5]
            if len(ticks) >= 3:
                break
        getattr(figure.layout, axis).update(
            tickmode="array", tickvals=ticks, ticktext=[f"{t:.3g}" for t in ticks])


# 20 colours told apart at a glance (D3's ten with purple for its grey, which here means
# "other" or "neutral", then ten of Plotly's Dark24): more than any
# chart of the lab draws at once, so a colour never wraps within a chart.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#aa0dfe", "#bcbd22", "#17becf",
    "#1616a7", "#fb00d1", "#00a08b", "#b68100", "#750d86",
    "#6c7c32", "#fc0080", "#511cfb", "#862a16", "#222a2a",
)
# The registry's variants keep one colour on every chart of the app (and in every report).
VARIANT_COLOURS = {variant: PALETTE[index] for index, variant in enumerate((
    "nn_relu", "where", "maximum", "keras", "custom_op", "mixed_precision", "stable",
    "clipped", "leaky", "adaptive", "adaptive_stats", "int8"))}
RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SETTING_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross",
                   "triangle-down", "pentagon", "hexagon")


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def distinct_colours(keys: list[str], fixed: dict[str, str] | None = None) -> dict[str, str]:
    """key -> colour, no colour given twice while the palette lasts: a key's own colour
    (``fixed``, else a stable hash of the key into PALETTE), or the next free one when another
    key of this chart holds it. The same key keeps its colour from chart to chart unless two
    unknown keys hash alike."""
    fixed = fixed or {}
    taken: dict[str, str] = {}
    order = [k for k in dict.fromkeys(keys) if k in fixed] + \
        [k for k in dict.fromkeys(keys) if k not in fixed]
    for key in order:
        start = (PALETTE.index(fixed[key]) if key in fixed
                 else zlib.crc32(str(key).encode()) % len(PALETTE))
        free = [PALETTE[(start + step) % len(PALETTE)] for step in range(len(PALETTE))]
        used = set(taken.values())
        taken[key] = next((c for c in free if c not in used), free[0])
    return taken


def variant_colours(variants: list[str]) -> dict[str, str]:
    """variant id -> its colour on this chart (VARIANT_COLOURS, else a stable hash; never two
    variants alike with up to len(PALETTE) of them)."""
    return distinct_colours([str(v) for v in variants], VARIANT_COLOURS)


def series_styles(frame: pd.DataFrame, names: pd.Series) -> dict[str, dict]:
    """series name -> {"color", "dash", "symbol"}: the colour of its variant, the line dash of
    its run (first run solid) and a marker symbol per combination of the other settings, so
    two series differ in at least one of the three."""
    first = frame.assign(series_name=names.to_numpy()).drop_duplicates("series_name")
    variant = first["variant"] if "variant" in first.columns else first["label"]
    colours = variant_colours(list(variant.astype(str)))
    runs = (list(dict.fromkeys(first["run_id"].astype(str))) if "run_id" in first.columns
            else [])
    settings = [c for c in SETTING_COLUMNS if c in first.columns]
    # a setting a case lacks (no allocator recorded) is "", never NaN: pandas 3 keeps NaN
    # through astype(str)
    combos = first[settings].astype(object).fillna("").astype(str).agg(" ".join, axis=1) \
        if settings else pd.Series("", index=first.index)
    combo_order = list(dict.fromkeys(combos))
    styles = {}
    for row, v, combo in zip(first.itertuples(), variant.astype(str), combos, strict=True):
        run = runs.index(str(row.run_id)) if runs else 0
        styles[row.series_name] = dict(
            color=colours[v], dash=RUN_DASHES[run % len(RUN_DASHES)],
            symbol=SETTING_SYMBOLS[combo_order.index(combo) % len(SETTING_SYMBOLS)])
    return styles


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _figure_of(traces: list[dict]) -> go.Figure:
    """A figure of these trace dicts, assembled without Plotly's per-property validation.

    Validation costs ~4 ms a trace on this machine: 20 runs draw 880 traces, seconds per
    chart. The dicts are built here from fixed keys (tests check the output validates); the
    layout is validated as usual."""
    figure = go.Figure(data=traces, _validate=False)
    figure._validate = True  # noqa: SLF001 - from here on (layout, added traces) as usual
    figure.layout = go.Layout()
    return figure


def _series_rows(names: pd.Series) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, series name, row positions) of each series in ``names`` (one per row), in order
    of appearance (positions, not groups: slicing arrays per series is ~100x cheaper)."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(names.tolist()):
        positions.setdefault(name, []).append(position)
    for index, (name, rows) in enumerate(positions.items()):
        yield index, name, np.asarray(rows)


def latency_vs_size(cases: pd.DataFrame) -> go.Figure:
    """Median time per call (µs) against element count, log-log, one line per series with a
    shaded 95% confidence band (``ci95_low_s``..``ci95_high_s``)."""
    title = "Latency vs size"
    frame = ok_cases(cases)
    if frame.empty:
        return empty_figure(title)
    numel = frame["numel"].to_numpy()
    median = frame["median_s"].astype(float).to_numpy() * 1e6
    low_all = frame["ci95_low_s"].fillna(frame["median_s"]).astype(float).to_numpy() * 1e6
    high_all = frame["ci95_high_s"].fillna(frame["median_s"]).astype(float).to_numpy() * 1e6
    shapes = frame["shape"].astype(str).to_numpy()
    traces = []
    names = series_names(frame)
    styles = series_styles(frame, names)
    for _, name, rows in _series_rows(names):
        style = styles[name]
        colour = style["color"]
        low, high, x = low_all[rows], high_all[rows], numel[rows]
        shown = display_text(name)
        traces.append(dict(
            type="scatter", x=np.concatenate([x, x[::-1]]).tolist(),
            y=np.concatenate([high, low[::-1]]).tolist(),
            mode="lines", fill="toself", fillcolor=_rgba(colour, 0.18), line=dict(width=0),
            hoverinfo="skip", showlegend=False, legendgroup=shown, name=f"{shown} 95% CI",
        ))
        traces.append(dict(
            type="scatter", x=x.tolist(), y=median[rows].tolist(), mode="lines+markers",
            line=dict(color=colour, dash=style["dash"]), marker=dict(symbol=style["symbol"]),
            name=shown, legendgroup=shown,
            customdata=list(zip(shapes[rows].tolist(), low.tolist(), high.tolist(), strict=True)),
            hovertemplate=(
                "%{customdata[0]}<br>median %{y:.3g} µs"
                "<br>95% CI %{customdata[1]:.3g}–%{customdata[2]:.3g} µs<extra>%{fullData.name}</extra>"
            ),
        ))
    return _layout(
        _figure_of(traces), title, "elements", "median time per call (µs)",
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
    log x, with the best point of the roof (the highest copy GB/s measured) as a dashed ceiling."""
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
                name=f"roof peak {peak:.3g} GB/s",
                hovertemplate="roof peak %{y:.3g} GB/s<extra></extra>",
            )
        )
    return figure


def speedup_table(cases: pd.DataFrame, baseline: str = "nn_relu",
                  threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Speedup of each series over the baseline variant at the same shape and settings.

    ``speedup = baseline time / variant time`` (>1 means faster than the baseline). Where the
    two cases were timed interleaved in one run (the stored ``ratio_to_baseline`` refers to this
    baseline) the speedup and its 95% CI come from the paired samples (``paired`` True);
    otherwise from the two medians' CIs (``stats.unpaired_ratio``). A case without a CI gets
    none (NaN bounds) and is never called significant. ``significant``: the CI excludes 1
    (``RatioStats.significant``); ``change``: 'faster', 'slower' or '' by the same rule with
    ``threshold`` (a fraction, 0.05 = 5%). Columns: ``series``, ``label``, ``variant``,
    ``shape``, ``numel``, ``case_id``, ``speedup``, ``speedup_low``, ``speedup_high``,
    ``paired``, ``significant``, ``change`` and the setting keys.
    """
    frame = ok_cases(cases)
    columns = ["series", "label", "variant", "shape", "numel", "case_id", "speedup",
               "speedup_low", "speedup_high", "paired", "significant", "change"]
    if frame.empty or baseline not in set(frame["variant"]):
        return pd.DataFrame(columns=columns)
    frame["series"] = series_names(frame)
    keys = ["shape"] + [c for c in SETTING_COLUMNS if c in frame.columns]
    if "run_id" in frame.columns and frame["run_id"].nunique() > 1:
        keys.append("run_id")
    # keys as text: a column that is None in every row (e.g. threads of scenario rows) is
    # object-typed on one side and float on the other, and pandas refuses to merge those
    frame[keys] = frame[keys].astype(str)
    base = frame[frame["variant"] == baseline]
    base = base.groupby(keys, dropna=False, as_index=False).first()
    stat_cols = ["case_id", "median_s", "ci95_low_s", "ci95_high_s", "n_samples"]
    base = base[keys + [c for c in stat_cols if c in base.columns]].rename(
        columns={c: f"base_{c}" for c in stat_cols})
    others = frame[frame["variant"] != baseline]
    merged = others.merge(base, on=keys, how="inner")
    if merged.empty:
        return pd.DataFrame(columns=columns)
    ratios = [_ratio_to_base(r) for r in merged.to_dict("records")]
    merged["speedup"] = [r.speedup for r in ratios]
    merged["speedup_low"] = [r.speedup_ci95[0] for r in ratios]
    merged["speedup_high"] = [r.speedup_ci95[1] for r in ratios]
    merged["paired"] = [r.paired for r in ratios]
    merged["significant"] = [r.significant() for r in ratios]
    merged["change"] = [r.change(threshold) for r in ratios]
    return merged[columns + keys[1:]].sort_values(["series", "numel"], kind="stable")


def _ratio_to_base(row: dict) -> RatioStats:
    """This case's time / the baseline's of one merged row: the stored paired ratio when both
    were timed interleaved, else the one from the two medians' CIs (NaN CI without them)."""
    paired = row.get("ratio_to_baseline")
    if (row.get("baseline_case_id") is not None and row.get("baseline_case_id") ==
            row.get("base_case_id") and paired is not None and not pd.isna(paired)):
        return ratio_stats(paired, row["ratio_ci95_low"], row["ratio_ci95_high"])
    ratio = unpaired_ratio(
        {k: row.get(f"base_{k}") for k in ("median_s", "ci95_low_s", "ci95_high_s", "n_samples")},
        {k: row.get(k) for k in ("median_s", "ci95_low_s", "ci95_high_s", "n_samples")})
    if ratio is None:
        return ratio_stats(row["median_s"] / row["base_median_s"], None, None, paired=False)
    return ratio


def speedup_vs_baseline(cases: pd.DataFrame, baseline: str = "nn_relu") -> go.Figure:
    """Speedup over ``baseline`` against element count (log x) with CI whiskers; points whose
    speedup CI includes 1 (difference not significant) are drawn as open circles."""
    title = f"Speedup vs {display_text(baseline)} (>1 is faster)"
    table = speedup_table(cases, baseline)
    if table.empty:
        return empty_figure(title, f"No cases to compare with baseline {display_text(baseline)}")
    numel = table["numel"].tolist()
    speedup = table["speedup"].to_numpy(dtype=float)
    high = (table["speedup_high"].to_numpy(dtype=float) - speedup).tolist()
    low = (speedup - table["speedup_low"].to_numpy(dtype=float)).tolist()
    significant = table["significant"].to_numpy(dtype=bool)
    symbols = np.where(significant, "circle", "circle-open").tolist()
    customdata = list(zip(table["shape"].astype(str).tolist(),
                          np.where(significant, "significant", "not significant").tolist(),
                          np.where(table["paired"].to_numpy(dtype=bool), "paired CI",
                                   "CI from two medians").tolist(), strict=True))
    speedup = speedup.tolist()
    traces = []
    styles = series_styles(table, table["series"])
    for _, name, rows in _series_rows(table["series"]):
        pick = rows.tolist()
        traces.append(dict(
            type="scatter", x=[numel[i] for i in pick], y=[speedup[i] for i in pick],
            mode="lines+markers", name=display_text(name),
            line=dict(color=styles[name]["color"], dash=styles[name]["dash"]),
            marker=dict(symbol=[symbols[i] for i in pick], size=10),
            error_y=dict(type="data", symmetric=False, array=[high[i] for i in pick],
                         arrayminus=[low[i] for i in pick]),
            customdata=[customdata[i] for i in pick],
            hovertemplate="%{customdata[0]}<br>%{y:.3g}x — %{customdata[1]} "
                          "(%{customdata[2]})<extra>%{fullData.name}</extra>",
        ))
    figure = _figure_of(traces)
    if not table["significant"].all():
        # A legend entry explaining the open markers.
        figure.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name="not significant (CI includes 1)",
                marker=dict(symbol="circle-open", size=10, color="black"),
            )
        )
    figure.add_hline(y=1.0, line=dict(color="grey", dash="dot"))
    # Log y: 2x faster and 2x slower sit at the same distance from 1.
    return _layout(figure, title, "elements", f"speedup vs {display_text(baseline)}",
                   xaxis_type="log", yaxis_type="log")


def roofline(cases: pd.DataFrame, roof: pd.DataFrame) -> go.Figure:
    """Effective GB/s against working-set bytes (read + written per call), log-log: each
    configuration's measured roof (best copy GB/s per working set) as a line, the cases as
    markers under it. A case's utilization is its height over the roof at its x."""
    title = "Roofline: effective bandwidth against working set"
    frame = ok_cases(cases)
    if "working_set_bytes" in frame.columns:
        frame = frame[pd.to_numeric(frame["working_set_bytes"], errors="coerce") > 0]
    else:
        frame = frame.iloc[0:0]
    if frame.empty and roof.empty:
        return empty_figure(title)
    figure = go.Figure()
    keys = [k for k in ("run_id", "device", "threads", "allocator") if k in roof.columns]
    groups = list(roof.groupby(keys, sort=False)) if not roof.empty else []
    names = run_names(roof) if "run_id" in roof.columns and len(groups) > 1 else {}
    for index, (key, group) in enumerate(groups):
        key = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        name = f"roof {key.get('device', '')} t{key.get('threads', '')} {key.get('allocator', '')}"
        if names:
            name += f" · run {names.get(key.get('run_id'), key.get('run_id'))}"
        y = group["roof_gbps"].fillna(group["gbps"]) if "roof_gbps" in group else group["gbps"]
        figure.add_trace(go.Scatter(
            x=group["working_set_bytes"], y=y, mode="lines", name=display_text(name),
            line=dict(color="black", dash=["dash", "dot", "dashdot"][index % 3]),
            hovertemplate="%{x:.3s}B working set: %{y:.3g} GB/s<extra>roof</extra>"))
    if not frame.empty:
        frame["series"] = series_names(frame)
        styles = series_styles(frame, frame["series"])
        for name, group in frame.groupby("series", sort=False):
            util = pd.to_numeric(group.get("utilization"), errors="coerce") * 100
            figure.add_trace(go.Scatter(
                x=group["working_set_bytes"], y=group["gbps"], mode="markers",
                name=display_text(name),
                marker=dict(color=styles[name]["color"], symbol=styles[name]["symbol"], size=9),
                customdata=np.stack([group["shape"].astype(str), util.round(0)], axis=-1),
                hovertemplate="%{customdata[0]}: %{y:.3g} GB/s, %{customdata[1]}% of the roof"
                              "<extra>%{fullData.name}</extra>"))
    return _layout(figure, title, "working set (bytes read + written per call)", "GB/s",
                   xaxis_type="log", yaxis_type="log")


def utilization(cases: pd.DataFrame) -> go.Figure:
    """Share of the roof reached at each case's own working set (%), against element count
    (log x)."""
    figure = _metric_vs_size(
        cases, "utilization", "Bandwidth utilization", "% of the roof at its working set", scale=100.0)
    if figure.data:
        # Above 100% happens honestly when the tensors fit in cache and the peak was calibrated
        # on DRAM-sized buffers, so the axis is not clipped at 100.
        figure.update_yaxes(rangemode="tozero")
        figure.add_hline(y=100.0, line=dict(color="black", dash="dash"),
                         annotation_text="the roof", annotation_position="top left")
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
    numel = frame["numel"].to_numpy()
    values = frame[column].astype(float).to_numpy() * scale
    shapes = frame[["shape"]].astype(str).to_numpy()
    names = series_names(frame)
    styles = series_styles(frame, names)
    traces = [
        dict(type="scatter", x=numel[rows].tolist(), y=values[rows].tolist(), mode="lines+markers",
             line=dict(color=styles[name]["color"], dash=styles[name]["dash"]),
             marker=dict(symbol=styles[name]["symbol"]), name=display_text(name),
             customdata=shapes[rows].tolist(),
             hovertemplate="%{customdata[0]}<br>%{y:.3g}" + unit + "<extra>%{fullData.name}</extra>")
        for _, name, rows in _series_rows(names)
    ]
    return _layout(_figure_of(traces), title, "elements", y_title, xaxis_type="log")


def breakdown_bars(breakdown: pd.DataFrame, cases: pd.DataFrame,
                   calls: int = TRACE_STEPS) -> go.Figure:
    """Horizontal stacked bars per case: compute / memcpy / collective (communication) / idle /
    other as a share of one traced call, so a 1e3 case's bar is as readable as a 1e7 one's; the
    µs per call (the trace's µs / ``calls``, the calls each trace records) are in each case's
    label and hover. ``breakdown`` has ``case_id`` + the five ``*_us`` columns. The figure is as
    tall as its cases need, the legend above the plot."""
    title = "Time breakdown per call (from traces)"
    if breakdown.empty or cases.empty:
        return empty_figure(title, "No traces with a time breakdown in these runs")
    frame = cases.copy()
    frame["series"] = series_names(frame)
    frame["case"] = frame["series"] + " · " + frame["shape"].astype(str)
    merged = breakdown.merge(frame[["case_id", "case", "numel"]], on="case_id", how="inner")
    if merged.empty:
        return empty_figure(title, "No traces with a time breakdown in these runs")
    merged = merged.sort_values(["numel", "case"], kind="stable")
    parts = [p for p in BREAKDOWN_PARTS if p in merged.columns]
    per_call = merged[parts].fillna(0.0).astype(float) / max(int(calls), 1)
    total = per_call.sum(axis=1)
    labels = [display_text(f"{c} · {format_time(t * 1e-6)}/call")
              for c, t in zip(merged["case"], total, strict=True)]
    share = per_call.div(total.where(total > 0), axis=0).fillna(0.0) * 100
    figure = go.Figure()
    for part in parts:
        figure.add_trace(
            go.Bar(
                y=labels, x=share[part], orientation="h", customdata=per_call[part],
                name=part.removesuffix("_us"), marker_color=BREAKDOWN_COLOURS[part],
                hovertemplate="%{y}<br>%{customdata:.4g} µs per call (%{x:.3g}%)"
                              "<extra>%{fullData.name}</extra>",
            )
        )
    _layout(figure, title, f"% of one call's traced time (trace of {calls} calls)", "",
            barmode="stack")
    figure.update_layout(height=max(300, 26 * len(labels) + 160),
                         legend=dict(title=None, orientation="h", y=1.02, yanchor="bottom",
                                     x=0, xanchor="left", traceorder="normal"),
                         margin=dict(l=60, r=20, t=90, b=50))
    figure.update_xaxes(range=[0, 100])
    figure.update_yaxes(autorange="reversed")  # the smallest case on top, as read
    return figure


RANKING_RULE = ("colour = speedup over the baseline variant at the same shape, dtype, device, "
                "threads, allocator, mode and pass, coloured only where its 95% CI lies beyond "
                "the threshold")


def table_baseline(cases: pd.DataFrame) -> str:
    """The variant the run measured its cases against (the variant of the cases named in
    ``baseline_case_id``), else nn_relu when present, else the first variant."""
    if cases.empty:
        return "nn_relu"
    if "baseline_case_id" in cases.columns:
        named = cases[cases["case_id"].isin(set(cases["baseline_case_id"].dropna()))]
        if not named.empty:
            return str(named["variant"].value_counts().index[0])
    variants = list(dict.fromkeys(cases["variant"].astype(str)))
    return "nn_relu" if "nn_relu" in variants else variants[0]


def compare_categories(cases: pd.DataFrame, baseline: str | None = None,
                       threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Long table of every ok case with its speedup over ``baseline`` (default
    ``table_baseline``) at the same shape and settings, its 95% CI, and its category: faster,
    slower, not resolved (RatioStats.change with ``threshold``), baseline, or no baseline.
    Every case of every run is a row: series names carry the run where runs repeat a label;
    with several runs a case is compared with the baseline of its own run."""
    frame = ok_cases(cases)
    columns = ["series", "label", "shape", "numel", *SETTING_COLUMNS, "median_us", "ci95_us",
               "speedup", "speedup_ci95_low", "speedup_ci95_high", "category", "run_id",
               "case_id"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    baseline = baseline or table_baseline(frame)
    frame["series"] = _unique(series_names(frame), frame["shape"].astype(str))
    frame["median_us"] = frame["median_s"] * 1e6
    frame["ci95_us"] = frame.get("ci95_s", pd.Series(np.nan, index=frame.index)) * 1e6
    speedups = speedup_table(frame.drop(columns="series"), baseline, threshold)
    found = speedups.set_index("case_id")[["speedup", "speedup_low", "speedup_high", "change"]] \
        .reindex(frame["case_id"].to_numpy())
    is_base = (frame["variant"].astype(str) == baseline).to_numpy()
    missing = found["change"].isna().to_numpy()
    category = np.where(found["change"].fillna("").to_numpy(object) == "", "not resolved",
                        found["change"].to_numpy(object))
    category = np.where(missing, "no baseline", category)
    frame["category"] = np.where(is_base, "baseline", category)
    for column, source in (("speedup", "speedup"), ("speedup_ci95_low", "speedup_low"),
                           ("speedup_ci95_high", "speedup_high")):
        frame[column] = np.where(is_base, 1.0, found[source].to_numpy(float))
    present = [c for c in columns if c in frame.columns]
    return frame[present].reset_index(drop=True)


def _unique(names: pd.Series, shapes: pd.Series) -> pd.Series:
    """Series names made unique per shape ("#2", "#3" for repeats), so a pivot loses no case."""
    count = pd.Series(0, index=names.index).groupby([names, shapes]).cumcount()
    return names.where(count == 0, names + " #" + (count + 1).astype(str))


def harness_floor_text(cases: pd.DataFrame) -> str | None:
    """'Harness floor: 24 ns per call (the timing loop around a no-op) — 0.4% of the fastest
    case' from the cases' floor_s, or None when no case recorded one."""
    if "floor_s" not in cases.columns:
        return None
    frame = ok_cases(cases)
    floors = pd.to_numeric(frame["floor_s"], errors="coerce").dropna()
    if floors.empty:
        return None
    floor = float(floors.max())
    fastest = float(pd.to_numeric(frame["median_s"], errors="coerce").min())
    share = f", {floor / fastest:.1%} of the fastest case" if fastest > 0 else ""
    return (f"Harness floor: {floor * 1e9:.3g} ns per call (the timing loop around a call that "
            f"does nothing){share}.")


def compare_table(cases: pd.DataFrame, baseline: str | None = None,
                  threshold: float = DEFAULT_THRESHOLD) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide results table like ``torch.utils.benchmark.Compare``: one row per series, one
    column per shape (ascending size), each cell the median time with the speedup over the
    baseline beside it ("12.3 µs · 1.48×"); plus the same-shaped frame of categories
    (``compare_categories``) used to colour it."""
    long = compare_categories(cases, baseline, threshold)
    if long.empty:
        return pd.DataFrame(), pd.DataFrame()
    long["cell"] = [format_time(m / 1e6) + ("" if c == "baseline" or not math.isfinite(v)
                                             else f" · {format_speedup(v)}")
                    for m, v, c in zip(long["median_us"], long["speedup"], long["category"],
                                       strict=True)]
    shapes = list(dict.fromkeys(long.sort_values("numel", kind="stable")["shape"]))
    values = long.pivot(index="series", columns="shape", values="cell")
    categories = long.pivot(index="series", columns="shape", values="category")
    order = list(dict.fromkeys(long["series"]))
    values = values.reindex(index=order, columns=shapes)
    categories = categories.reindex(index=order, columns=shapes)
    values.columns.name = categories.columns.name = "median time · speedup"
    return values, categories


def format_us(value: float) -> str:
    """3 significant digits without exponent notation: 0.123, 12.3, 2,820 (units' rule)."""
    return format_number(value)


def compare_styler(cases: pd.DataFrame, baseline: str | None = None,
                   threshold: float = DEFAULT_THRESHOLD):
    """``compare_table`` as a pandas Styler coloured by category (green faster, orange slower,
    neutral when not resolved). For st.dataframe; the HTML report builds its own table."""
    values, categories = compare_table(cases, baseline, threshold)
    return values.style.format(na_rep="–").apply(
        lambda _: categories.map(lambda c: COMPARE_COLOURS.get(c, "") if isinstance(c, str) else ""),
        axis=None,
    )


def compare_legend_markdown(baseline: str, threshold: float = DEFAULT_THRESHOLD) -> str:
    """The heat table's legend for st.caption: what each colour means, with the threshold."""
    colours = {"faster": "green", "slower": "orange", "not resolved": "gray",
               "baseline": "gray", "no baseline": "gray"}
    parts = [f":{colours[name]}-background[{name}]" for name in COMPARE_COLOURS]
    return (f"Median time per call · speedup over {baseline} (above 1 is faster), per shape, "
            f"compared only with {baseline} at the same mode, shape, dtype, device, threads "
            f"and pass; coloured only where the speedup's 95% CI lies wholly beyond "
            f"±{threshold:.0%}: " + " · ".join(parts))


def fusion_table(fusion: pd.DataFrame) -> pd.DataFrame:
    """Fusion results for display: did the ReLU fuse into Grappler's ``_FusedConv2D``/
    ``_FusedMatMul`` or into an XLA fusion, and what that costs in time: the block's median
    µs with its 95% CI half-width, and its speedup over the fused baseline's block (nn_relu;
    the inverse of the stored ``time_vs_fused`` ratio) with its 95% CI, as
    "0.870× [0.850, 0.890]" (blank where none was measured: none is made up)."""
    columns = ["variant", "block", "fused", "fused_into", "kernels", "time_us", "time_ci95_us",
               "speedup", "hlo_fusions", "instructions_before", "instructions_after",
               "compiled", "reason"]
    if fusion.empty:
        return pd.DataFrame(columns=columns)
    frame = fusion.copy()
    if "time_s" in frame.columns:
        frame["time_us"] = frame["time_s"] * 1e6
    if {"time_ci95_low_s", "time_ci95_high_s"} <= set(frame.columns):
        frame["time_ci95_us"] = (frame["time_ci95_high_s"] - frame["time_ci95_low_s"]) / 2 * 1e6
    if "time_vs_fused" in frame.columns:
        ratios = [ratio_stats(r.get("time_vs_fused"), r.get("ratio_ci95_low"),
                              r.get("ratio_ci95_high")) for r in frame.to_dict("records")]
        frame["speedup"] = [None if math.isnan(r.speedup) else
                            format_speedup(r.speedup, *r.speedup_ci95) for r in ratios]
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
