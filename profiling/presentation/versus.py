"""B against A: each other run's speedup over a baseline run, case by case, as a table, a
display table (the Compare page, the HTML report, CSV) and one chart: a Vega-Lite spec for the
Compare page (Streamlit draws it without loading Plotly's 4.6 MB bundle, so the page's first
chart comes sooner) and a Plotly figure for the HTML report (plotly.js is inside it, offline).

The matching and the statistics are `analysis.compare.compare_runs` (the CLI's `compare`):
two runs never share a worker, so the speedup's CI is the unpaired one
(`stats.unpaired_ratio`), and the verdict is the lab's one significance rule
(`RatioStats.change`) with the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from profiling.analysis.compare import MATCH_KEYS, compare_runs
from profiling.presentation import units
from profiling.presentation.charts import (
    DEFAULT_THRESHOLD,
    RUN_DASHES,
    SETTING_SYMBOLS,
    _figure_of,
    _layout,
    display_text,
    empty_figure,
    variant_colours,
)

VERSUS_COLUMNS = ["run_b", "case", "variant", *MATCH_KEYS, "median_s_a", "median_s_b",
                  "speedup", "speedup_ci95_low", "speedup_ci95_high", "verdict"]


STAT_COLUMNS = ["run_id", "variant", "status", "median_s", "ci95_low_s", "ci95_high_s",
                "ci95_s", "n_samples"]


def versus_table(cases: pd.DataFrame, base_run: str,
                 threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Each run other than ``base_run`` (B) against it (A), per matched case (same variant
    and parameters, shape, dtype, device, threads, allocator, mode and pass): ``median_s_a``,
    ``median_s_b`` (s per call), ``speedup`` = t_A / t_B (above 1: B is faster) with its 95%
    CI, and ``verdict``: faster, slower or not resolved (the CI lies wholly beyond
    1 ± ``threshold``, a fraction, or not). ``run_b`` is B's id, ``case`` a short name of the
    case. Sorted by effect: the largest change first, within each B in the order of the runs."""
    if cases.empty or "run_id" not in cases.columns:
        return pd.DataFrame(columns=VERSUS_COLUMNS)
    # Only the columns the match needs: merging the store's ~50 columns cost seconds at 20 runs.
    frame = cases[[c for c in MATCH_KEYS + STAT_COLUMNS if c in cases.columns]]
    is_a = (frame["run_id"] == base_run).to_numpy()
    table = compare_runs(frame[is_a], frame[~is_a], threshold, keep=("run_id_b", "variant_b"))
    if table.empty:
        return pd.DataFrame(columns=VERSUS_COLUMNS)
    table = table.rename(columns={"run_id_b": "run_b", "variant_b": "variant"})
    table["verdict"] = np.select([table["regression"].to_numpy(bool),
                                  table["improvement"].to_numpy(bool)],
                                 ["slower", "faster"], "not resolved")
    order = {run: index for index, run in enumerate(dict.fromkeys(cases["run_id"]))}
    effect = np.abs(np.log(pd.to_numeric(table["speedup"], errors="coerce")))
    table = table.assign(_order=table["run_b"].map(order), _effect=-effect.fillna(0)) \
        .sort_values(["_order", "_effect"], kind="stable")
    table["case"] = case_names(table)
    return table[VERSUS_COLUMNS].reset_index(drop=True)


def case_names(table: pd.DataFrame) -> pd.Series:
    """'leaky(alpha=0.2) · 1000x1000 · function': the label, the shape and the settings that
    vary among these rows."""
    names = table["label"].astype(str) + " · " + table["shape"].astype(str)
    for column in MATCH_KEYS[2:]:
        if column in table.columns and table[column].astype(str).nunique() > 1:
            values = table[column].astype(str)
            names = names + " · " + (values + " threads" if column == "threads" else values)
    return names


def versus_display(table: pd.DataFrame, names: Mapping[str, str],
                   base_run: str) -> pd.DataFrame:
    """The table as people read it (the page, the report): B, the case, both times, the
    speedup with its CI as '1.48× [1.41, 1.55]', the verdict."""
    base = names.get(base_run, base_run)
    return pd.DataFrame({
        "B": [names.get(r, r) for r in table["run_b"]],
        "case": table["case"],
        f"time A ({base})": [units.format_time(v) for v in table["median_s_a"]],
        "time B": [units.format_time(v) for v in table["median_s_b"]],
        "speedup B vs A [95% CI]": [
            units.format_speedup(s, lo, hi) for s, lo, hi in
            zip(table["speedup"], table["speedup_ci95_low"], table["speedup_ci95_high"],
                strict=True)],
        "verdict": table["verdict"],
    })


def versus_csv(table: pd.DataFrame, base_run: str) -> str:
    """The table as CSV, numbers unrounded (seconds per call; speedup = t_A / t_B)."""
    return table.assign(run_a=base_run)[["run_a", *VERSUS_COLUMNS]].to_csv(index=False)


def threshold_band(threshold: float) -> tuple[float, float]:
    """The speedups that can never be called a change: the speedup is the ratio's inverse, and
    a change needs the ratio's CI beyond 1 ± threshold."""
    return 1 / (1 + threshold), (1 / (1 - threshold) if threshold < 1 else math.inf)


def versus_chart(table: pd.DataFrame, names: Mapping[str, str], base_run: str,
                 threshold: float = DEFAULT_THRESHOLD) -> go.Figure:
    """B's speedup over A per case (log x, case per row in the table's order, largest change
    on top) with 95% CI whiskers and the threshold band shaded; one marker symbol per B run,
    coloured by variant (the app's palette), open where the verdict is not resolved: the
    Compare page's chart (``versus_spec``) read the same way, for the HTML report."""
    base = names.get(base_run, base_run)
    title = f"Speedup over {display_text(base)} per case (above 1 is faster)"
    if table.empty:
        return empty_figure(title, "No cases matched between these runs")
    cases = [display_text(c) for c in dict.fromkeys(table["case"])]
    colours = variant_colours(list(dict.fromkeys(table["variant"].astype(str))))
    traces = []
    for index, (run_b, rows) in enumerate(table.groupby("run_b", sort=False)):
        speedup = rows["speedup"].to_numpy(float)
        low_ci = rows["speedup_ci95_low"].to_numpy(float)
        high_ci = rows["speedup_ci95_high"].to_numpy(float)
        verdicts = rows["verdict"].tolist()
        traces.append(dict(
            type="scatter", x=speedup.tolist(), y=[display_text(c) for c in rows["case"]],
            mode="markers", name=display_text(f"B = {names.get(run_b, run_b)}"),
            marker=dict(symbol=[SETTING_SYMBOLS[index % len(SETTING_SYMBOLS)]
                                + ("-open" if v == "not resolved" else "") for v in verdicts],
                        size=9, color=[colours[v] for v in rows["variant"].astype(str)],
                        line=dict(width=1.5)),
            error_x=dict(type="data", symmetric=False,
                         array=np.nan_to_num(high_ci - speedup).tolist(),
                         arrayminus=np.nan_to_num(speedup - low_ci).tolist(),
                         color="#555", thickness=1.2),
            customdata=list(zip(low_ci.tolist(), high_ci.tolist(), verdicts, strict=True)),
            hovertemplate="%{y}<br>%{x:.3g}× [%{customdata[0]:.3g}, %{customdata[1]:.3g}] "
                          "— %{customdata[2]}<extra>%{fullData.name}</extra>",
        ))
    figure = _figure_of(traces)
    low, high = threshold_band(threshold)
    figure.add_vrect(x0=low, x1=min(high, 1e9), fillcolor="#bcbcbc", opacity=0.25, line_width=0,
                     layer="below")
    figure.add_vline(x=1.0, line=dict(color="grey", dash="dot"))
    figure = _layout(figure, title, f"speedup over {display_text(base)} (log)", "",
                     xaxis_type="log", height=max(320, 22 * len(cases) + 140),
                     yaxis=dict(categoryorder="array", categoryarray=cases[::-1]))
    figure.add_annotation(text=f"shaded: within ±{threshold:.0%}, never called a change",
                          xref="paper", yref="paper", x=0, y=1.0, yanchor="bottom",
                          showarrow=False, font=dict(size=11, color="#555"))
    return figure


# Plotly's dash names (RUN_DASHES: a run's line style on every chart) as Vega-Lite dash arrays.
VEGA_DASHES = {"solid": [1, 0], "dash": [6, 3], "dot": [2, 2], "dashdot": [6, 3, 2, 3],
               "longdash": [10, 4], "longdashdot": [10, 4, 2, 4]}
# Vega-Lite's point shapes in the order of Plotly's SETTING_SYMBOLS (one per B run).
VEGA_SHAPES = ("circle", "square", "diamond", "triangle-up", "cross", "triangle-down",
               "triangle-right", "triangle-left", "stroke", "arrow")
ROW_PX = 20


def versus_spec(table: pd.DataFrame, names: Mapping[str, str], base_run: str,
                threshold: float = DEFAULT_THRESHOLD) -> dict:
    """The chart of ``versus_table`` as a Vega-Lite spec: B's speedup over A per case (log x,
    a row per case in the table's order, the largest change on top) with 95% CI whiskers, the
    threshold band shaded and a line at 1. Each variant has its colour (``variant_colours``:
    the one palette of every chart), each B run its whisker dash (``RUN_DASHES``) and marker
    shape; a marker is filled where the verdict is a change, open where it is not resolved.
    Data inline (one row per table row), tooltips with the speedup, its CI and both times."""
    base = names.get(base_run, base_run)
    title = f"Speedup over {base} per case (above 1 is faster)"
    if table.empty:
        return {"title": title, "data": {"values": [{"text": "No cases matched between these runs"}]},
                "mark": {"type": "text", "fontSize": 14, "color": "#555"},
                "encoding": {"text": {"field": "text", "type": "nominal"}},
                "width": "container", "height": 120}
    runs = [names.get(r, r) for r in dict.fromkeys(table["run_b"])]
    variants = list(dict.fromkeys(table["variant"].astype(str)))
    colours = variant_colours(variants)
    cases = list(dict.fromkeys(table["case"]))
    rows = pd.DataFrame({
        "case": table["case"].astype(str),
        "B": [names.get(r, r) for r in table["run_b"]],
        "variant": table["variant"].astype(str),
        "speedup": pd.to_numeric(table["speedup"], errors="coerce"),
        "low": pd.to_numeric(table["speedup_ci95_low"], errors="coerce"),
        "high": pd.to_numeric(table["speedup_ci95_high"], errors="coerce"),
        "verdict": table["verdict"].astype(str),
        "speedup [95% CI]": [units.format_speedup(s, lo, hi) for s, lo, hi in zip(
            table["speedup"], table["speedup_ci95_low"], table["speedup_ci95_high"],
            strict=True)],
        "time A": [units.format_time(v) for v in table["median_s_a"]],
        "time B": [units.format_time(v) for v in table["median_s_b"]],
    })
    rows = rows[np.isfinite(rows["speedup"]) & (rows["speedup"] > 0)]
    # Vega's JSON has no NaN: a missing CI bound is a whisker of no length.
    rows["low"] = rows["low"].where(np.isfinite(rows["low"]), rows["speedup"])
    rows["high"] = rows["high"].where(np.isfinite(rows["high"]), rows["speedup"])
    low, high = threshold_band(threshold)
    y = {"field": "case", "type": "nominal", "sort": cases, "title": None,
         "axis": {"labelLimit": 420}}
    x_title = f"speedup over {base} (log)"
    x_scale = {"type": "log", "nice": False, "padding": 12}
    colour = {"field": "variant", "type": "nominal", "title": "variant",
              "scale": {"domain": variants, "range": [colours[v] for v in variants]}}
    dash = {"field": "B", "type": "nominal", "title": "B run",
            "scale": {"domain": runs, "range": [VEGA_DASHES[RUN_DASHES[i % len(RUN_DASHES)]]
                                                for i in range(len(runs))]}}
    shape = {"field": "B", "type": "nominal", "title": "B run",
             "scale": {"domain": runs,
                       "range": [VEGA_SHAPES[i % len(VEGA_SHAPES)] for i in range(len(runs))]}}
    tooltip = [{"field": f, "type": "nominal"} for f in
               ("B", "case", "speedup [95% CI]", "verdict", "time A", "time B")]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": {"text": title, "anchor": "start",
                  "subtitle": f"shaded: within ±{threshold:.0%}, never called a change; "
                              "filled: faster or slower, open: not resolved"},
        "width": "container",
        "height": {"step": ROW_PX},
        "data": {"values": rows.to_dict("records")},
        "layer": [
            {"data": {"values": [{"low": low, "high": min(high, 1e9)}]},
             "mark": {"type": "rect", "color": "#bcbcbc", "opacity": 0.35},
             "encoding": {"x": {"field": "low", "type": "quantitative", "scale": x_scale,
                                "title": x_title},
                          "x2": {"field": "high"}}},
            {"data": {"values": [{"one": 1.0}]},
             "mark": {"type": "rule", "color": "grey", "strokeDash": [2, 2]},
             "encoding": {"x": {"field": "one", "type": "quantitative"}}},
            {"mark": {"type": "rule", "strokeWidth": 1.4},
             "encoding": {"y": y, "x": {"field": "low", "type": "quantitative"},
                          "x2": {"field": "high"}, "color": colour,
                          "strokeDash": dash, "tooltip": tooltip}},
            {"mark": {"type": "point", "size": 70, "strokeWidth": 1.6, "opacity": 1},
             "encoding": {
                 "y": y, "x": {"field": "speedup", "type": "quantitative"},
                 "stroke": colour, "shape": shape,
                 "fill": colour,  # one legend: Vega-Lite merges those of one field
                 "fillOpacity": {"condition": {"test": "datum.verdict !== 'not resolved'",
                                               "value": 1}, "value": 0},
                 "tooltip": tooltip}},
        ],
        # SVG even past Streamlit's 2,000-row switch to canvas: marks a browser test can find.
        "usermeta": {"embedOptions": {"renderer": "svg"}},
        "config": {"axis": {"labelFontSize": 11, "titleFontSize": 12},
                   "legend": {"labelFontSize": 11, "titleFontSize": 12, "labelLimit": 320}},
    }
