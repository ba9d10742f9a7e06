"""The B-vs-A chart as one SVG document, drawn here in Python: a forest plot of each B run's
speedup over A per case (log x, a row per case, the largest change on top) with 95% CI
whiskers, the threshold band shaded and a line at 1.

One chart for the Compare page and the HTML report. It is plain SVG because the page's
first chart must come fast on a 2-vCPU machine: Plotly's bundle alone took 1.9-2.6 s to draw
a 3-point chart in Chromium there, and Vega-Lite's arrives behind the page's other lazily
loaded scripts (docs/measurements.md). SVG needs no script: hovering a marker shows its
tooltip (an SVG ``<title>``). Each variant has its colour
(``charts.variant_colours``, the palette of every chart), each B run its marker shape and
whisker dash; a marker is filled where the verdict is a change, open where not resolved.
It draws at most ``MAX_RUNS`` B runs, one per marker shape: more would repeat the shapes, and
a row of 19 overlaid markers (20 runs) is not readable (the table lists every B run).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
import pandas as pd

from profiling.presentation import units
from profiling.presentation.charts import DEFAULT_THRESHOLD, RUN_DASHES, variant_colours
from profiling.presentation.versus import threshold_band

ROW_PX = 20
PLOT_PX = 560
CHAR_PX = 6.6  # an average glyph of 11 px sans-serif, for the label column's width
FONT = "font-family:sans-serif"
# SVG dash arrays of Plotly's dash names (RUN_DASHES: a run's line style on every chart)
DASHES = {"solid": "", "dash": "6 3", "dot": "2 2", "dashdot": "6 3 2 3", "longdash": "10 4",
          "longdashdot": "10 4 2 4"}
SHAPES = ("circle", "square", "diamond", "triangle-up", "triangle-down", "cross")
MAX_RUNS = len(SHAPES)


def svg_height(svg: str) -> int:
    """The height in px of an SVG document made here (its root's ``height``)."""
    found = re.search(r'<svg [^>]*?height="(\d+)"', svg)
    return int(found.group(1)) if found else 0


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks within [low, high]; for a range too narrow for two of them, its two ends
    (two significant digits) and 1 when inside."""
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)),
                                         math.ceil(math.log10(high)) + 1) for m in (1, 2, 5)]
    inside = [float(f"{t:.3g}") for t in ticks if low <= t <= high]
    if len(inside) >= 2:
        return inside
    ends = [float(f"{low:.2g}"), float(f"{high:.2g}")]
    return sorted(set(ends + ([1.0] if low <= 1 <= high else [])))


def marker(shape: str, x: float, y: float, r: float = 4.5) -> str:
    """An SVG element's tag and geometry for one marker shape centred at (x, y)."""
    if shape == "circle":
        return f'circle cx="{x:.1f}" cy="{y:.1f}" r="{r}"'
    if shape == "square":
        return f'rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}"'
    points = {
        "diamond": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
        "triangle-up": [(0, -1.3), (1.2, 1), (-1.2, 1)],
        "triangle-down": [(0, 1.3), (1.2, -1), (-1.2, -1)],
        "cross": [(-0.4, -1.2), (0.4, -1.2), (0.4, -0.4), (1.2, -0.4), (1.2, 0.4), (0.4, 0.4),
                  (0.4, 1.2), (-0.4, 1.2), (-0.4, 0.4), (-1.2, 0.4), (-1.2, -0.4), (-0.4, -0.4)],
    }[shape]
    return 'polygon points="' + " ".join(f"{x + dx * r:.1f},{y + dy * r:.1f}"
                                         for dx, dy in points) + '"'


def b_runs(table: pd.DataFrame) -> list[str]:
    """The B runs of a ``versus.versus_table``, in its order."""
    return list(dict.fromkeys(table["run_b"])) if len(table) else []


def drawn_runs(table: pd.DataFrame, chosen: Sequence[str] | None = None) -> list[str]:
    """The B runs the chart draws, in the table's order: all when there are at most
    ``MAX_RUNS``, else those of ``chosen`` (the first MAX_RUNS when None or when none of them
    is in the table), at most MAX_RUNS."""
    runs = b_runs(table)
    if len(runs) <= MAX_RUNS:
        return runs
    picked = [run for run in runs if chosen is not None and run in set(chosen)]
    return (picked or runs)[:MAX_RUNS]


def versus_svg(table: pd.DataFrame, names: Mapping[str, str], base_run: str,
               threshold: float = DEFAULT_THRESHOLD,
               runs: Sequence[str] | None = None) -> str:
    """``versus.versus_table`` drawn as an SVG document (see the module's docstring) for the
    B runs ``drawn_runs(table, runs)``; every label escaped. Markers carry ``data-case``,
    ``data-run`` and ``data-verdict``."""
    base = names.get(base_run, base_run)
    title = f"Speedup over {base} per case (above 1 is faster)"
    every_run = b_runs(table)
    drawn = drawn_runs(table, runs)
    if len(drawn) < len(every_run):
        table = table[table["run_b"].isin(drawn)]
    speedup = pd.to_numeric(table.get("speedup"), errors="coerce").to_numpy(float) \
        if len(table) else np.array([])
    keep = np.isfinite(speedup) & (speedup > 0)
    rows = table[keep] if len(table) else table
    if rows.empty:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="versus-chart" width="640" '
                f'height="70" style="{FONT}"><text x="4" y="20" font-size="15">'
                f'{escape(title)}</text><text x="4" y="50" font-size="13" fill="#555">'
                'No cases matched between these runs</text></svg>')
    s = rows["speedup"].to_numpy(float)
    lo = pd.to_numeric(rows["speedup_ci95_low"], errors="coerce").to_numpy(float)
    hi = pd.to_numeric(rows["speedup_ci95_high"], errors="coerce").to_numpy(float)
    lo = np.where(np.isfinite(lo) & (lo > 0), lo, s)  # a missing bound: no whisker that side
    hi = np.where(np.isfinite(hi) & (hi > 0), hi, s)
    band_lo, band_hi = threshold_band(threshold)
    x_lo = min(lo.min(), band_lo) / 1.08
    x_hi = max(hi.max(), min(band_hi, 1e9), 1.0) * 1.08

    cases = list(dict.fromkeys(rows["case"].astype(str)))
    runs = list(dict.fromkeys(rows["run_b"]))
    note = (f"{len(runs)} of {len(every_run)} B runs drawn (a marker shape each); the table "
            "lists them all" if len(runs) < len(every_run) else "")
    variants = list(dict.fromkeys(rows["variant"].astype(str)))
    colours = variant_colours(variants)
    label_px = int(min(60, max(len(c) for c in cases)) * CHAR_PX) + 12
    legend_rows = math.ceil(len(variants) / 4) + math.ceil(len(runs) / 4)
    legend_top = 68 if note else 52
    top = legend_top + 18 * legend_rows
    height = top + ROW_PX * len(cases) + 40
    width = label_px + PLOT_PX + 20

    def x_of(v: float) -> float:
        t = (math.log(min(max(v, x_lo), x_hi)) - math.log(x_lo)) / (math.log(x_hi) -
                                                                    math.log(x_lo))
        return label_px + t * PLOT_PX

    def y_of(case: str) -> float:
        return top + ROW_PX * (row_of[case] + 0.5)

    row_of = {c: i for i, c in enumerate(cases)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="versus-chart" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" style="{FONT}" role="img">',
           f'<title>{escape(title)}</title>',
           f'<text x="4" y="18" font-size="15">{escape(title)}</text>',
           f'<text x="4" y="36" font-size="11" fill="#555">shaded: within ±{threshold:.0%}, '
           'never called a change; filled: faster or slower, open: not resolved</text>']
    if note:
        out.append(f'<text x="4" y="52" font-size="11" fill="#555">{escape(note)}</text>')
    for i, v in enumerate(variants):  # legend: variants by colour, runs by shape and dash
        x = 4 + (i % 4) * 170
        y = legend_top + 18 * (i // 4)
        out.append(f'<{marker("square", x + 5, y, 4)} fill="{colours[v]}"/>'
                   f'<text x="{x + 14}" y="{y + 4}" font-size="11">{escape(v[:24])}</text>')
    first_run_row = legend_top + 18 * math.ceil(len(variants) / 4)
    for i, run in enumerate(runs):
        x = 4 + (i % 4) * 170
        y = first_run_row + 18 * (i // 4)
        dash = DASHES[RUN_DASHES[i % len(RUN_DASHES)]]
        out.append(f'<line x1="{x}" x2="{x + 18}" y1="{y}" y2="{y}" stroke="#333" '
                   f'stroke-dasharray="{dash}"/><{marker(SHAPES[i % len(SHAPES)], x + 9, y)} '
                   f'fill="white" stroke="#333"/><text x="{x + 24}" y="{y + 4}" '
                   f'font-size="11">B = {escape(str(names.get(run, run))[:22])}</text>')
    bottom = top + ROW_PX * len(cases)
    b0, b1 = x_of(band_lo), x_of(min(band_hi, x_hi))
    out.append(f'<rect x="{b0:.1f}" y="{top}" width="{b1 - b0:.1f}" height="{bottom - top}" '
               'fill="#bcbcbc" opacity="0.35"/>')
    for i, case in enumerate(cases):
        yc = top + ROW_PX * (i + 0.5)
        if i % 2:
            out.append(f'<rect x="{label_px}" y="{yc - ROW_PX / 2:.1f}" width="{PLOT_PX}" '
                       f'height="{ROW_PX}" fill="#000" opacity="0.03"/>')
        out.append(f'<text x="{label_px - 6}" y="{yc + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{escape(case[:60])}</text>')
    for t in log_ticks(x_lo, x_hi):
        x = x_of(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#ddd"/>'
                   f'<text x="{x:.1f}" y="{bottom + 14}" font-size="10" text-anchor="middle">'
                   f'{t:g}×</text>')
    one = x_of(1.0)
    out.append(f'<line x1="{one:.1f}" x2="{one:.1f}" y1="{top}" y2="{bottom}" stroke="grey" '
               'stroke-dasharray="2 2"/>')
    out.append(f'<text x="{label_px + PLOT_PX / 2}" y="{bottom + 32}" font-size="12" '
               f'text-anchor="middle">speedup over {escape(str(base))} (log)</text>')
    run_index = {r: i for i, r in enumerate(runs)}
    for k, row in enumerate(rows.itertuples(index=False)):
        case, run, verdict = str(row.case), row.run_b, str(row.verdict)
        i = run_index[run]
        yc = y_of(case)
        colour = colours[str(row.variant)]
        dash = DASHES[RUN_DASHES[i % len(RUN_DASHES)]]
        tip = (f"B = {names.get(run, run)}\n{case}\n"
               f"{units.format_speedup(row.speedup, row.speedup_ci95_low, row.speedup_ci95_high)}"
               f" · {verdict}\ntime A {units.format_time(row.median_s_a)} · time B "
               f"{units.format_time(row.median_s_b)}")
        fill = "white" if verdict == "not resolved" else colour
        out.append(f'<g class="case" data-case="{escape(case)}" data-run="{escape(str(run))}" '
                   f'data-verdict="{escape(verdict)}"><title>{escape(tip)}</title>'
                   f'<line x1="{x_of(lo[k]):.1f}" x2="{x_of(hi[k]):.1f}" y1="{yc:.1f}" '
                   f'y2="{yc:.1f}" stroke="{colour}" stroke-width="1.4" '
                   f'stroke-dasharray="{dash}"/><{marker(SHAPES[i % len(SHAPES)], x_of(s[k]), yc)}'
                   f' class="marker" fill="{fill}" stroke="{colour}" stroke-width="1.6"/></g>')
    out.append("</svg>")
    return "".join(out)
