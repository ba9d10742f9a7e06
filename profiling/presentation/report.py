"""One self-contained HTML file for a comparison: works offline (plotly.js inlined once), and
every user-supplied text (labels, run labels, environment values, reasons) is HTML-escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from profiling.measurement import noise
from profiling.presentation import charts, units
from profiling.storage.stored_json import decode, shape_problem

CASE_TABLE_COLUMNS = ("run_id", "label", "shape", "dtype", "device", "threads", "mode", "pass",
                      "status", "reason", "median_s", "ci95_s", "gbps", "utilization",
                      "page_faults_per_call")
STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem auto;
       max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f4f4f4; } td.name, th.name { text-align: left; }
.meta { color: #666; } .warning { color: #8a5300; background: #fff4e0; padding: 0.4rem; }
.legend span { padding: 0.1rem 0.5rem; margin-right: 0.3rem; }
.chart { margin: 1rem 0; }
"""


def filter_cases(cases: pd.DataFrame, filters: Mapping[str, Sequence] | None) -> pd.DataFrame:
    """Keep rows whose column value is among the chosen ones (as strings); empty choice = all."""
    for column, chosen in (filters or {}).items():
        if chosen and column in cases.columns:
            cases = cases[cases[column].astype(str).isin([str(c) for c in chosen])]
    return cases


def render_html(store: Any, run_ids: Sequence[str], baseline: str = "nn_relu",
                filters: Mapping[str, Sequence] | None = None,
                semantics: pd.DataFrame | None = None) -> str:
    """The comparison of ``run_ids`` (charts, coloured results table, fusion, semantics,
    environment) as one HTML document string. ``filters`` maps case columns (dtype, mode, …) to
    kept values; ``semantics`` is ``relu_impls.semantics.semantics_table()`` (section left out
    when None)."""
    run_ids = list(run_ids)
    runs = store.list_runs()
    runs = runs[runs["run_id"].isin(run_ids)]
    cases = filter_cases(store.cases(run_ids), filters)
    kept = set(cases["case_id"])
    breakdown = store.breakdown(run_ids)
    breakdown = breakdown[breakdown["case_id"].isin(kept)]
    fusion = store.fusion(run_ids)
    warnings = noise.warnings(runs, charts.run_names(runs.rename(columns={"label": "run_label"})))
    sections = [
        _section("Runs", _table(runs, ("run_id", "created_at", "status", "n_cases", "label",
                                       "noise_verdict"))
                 + "".join(f"<p class=\"warning\">⚠ {_e(w)}</p>" for w in warnings)),
        _section("Results (median µs per call, coloured by ratio to the best)",
                 _compare_table(cases)),
        _charts_section(cases, breakdown, baseline, store.roof(run_ids)),
        _section("Fusion", _table(charts.fusion_table(fusion)) if not fusion.empty
                 else "<p>No fusion checks in these runs.</p>"),
        *([_section("Semantics (NaN, ±0, inf, subnormal, gradient at 0)",
                    _figure(charts.semantics_matrix(semantics)))] if semantics is not None else []),
        _guide_section(store, runs),
        _section("All cases", _table(cases, CASE_TABLE_COLUMNS)),
        _section("Environment", "".join(
            _environment(run_id, store.environment(run_id)) for run_id in run_ids)),
    ]
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    filter_text = ", ".join(f"{k}: {', '.join(map(str, v))}" for k, v in (filters or {}).items() if v)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>ReLU Lab report — {_e(', '.join(run_ids))}</title><style>{STYLE}</style>"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
        "<h1>ReLU Lab comparison</h1>"
        f"<p class=\"meta\">Runs {_e(', '.join(run_ids))} · baseline {_e(baseline)}"
        f"{' · ' + _e(filter_text) if filter_text else ''} · generated {generated}</p>"
        + "".join(sections)
        + "</body></html>\n"
    )


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def _section(title: str, body: str) -> str:
    return f"<h2>{_e(title)}</h2>{body}"


def _figure(figure: go.Figure) -> str:
    return "<div class=\"chart\">" + figure.to_html(
        full_html=False, include_plotlyjs=False, default_height="460px",
        config={"displaylogo": False},
    ) + "</div>"


def _charts_section(cases: pd.DataFrame, breakdown: pd.DataFrame, baseline: str,
                    roof: pd.DataFrame) -> str:
    figures = [
        charts.latency_vs_size(cases),
        charts.effective_bandwidth(cases),
        charts.speedup_vs_baseline(cases, baseline),
        charts.roofline(cases, roof),
        charts.utilization(cases),
        charts.page_faults(cases),
    ]
    if not breakdown.empty:
        figures.append(charts.breakdown_bars(breakdown, cases))
    return _section("Charts", "".join(_figure(f) for f in figures))


GUIDE_COLUMNS = ("label", "mode", "status", "median_s", "ci95_low_s", "ci95_high_s",
                 "samples_per_s", "final_loss", "loss_vs_float32", "loss_vs_float", "accuracy",
                 "half_ops", "zero_fraction", "dense_bytes", "coo_bytes", "bitmask_bytes",
                 "dead_fraction", "max_activation_norm", "max_grad_norm", "max_abs_error",
                 "error_in_scales", "reason")


def _guide_section(store: Any, runs: pd.DataFrame) -> str:
    """The guide's claims (from a selected claims run, else the newest stored one) and each
    selected guide scenario's results (profiling.experiments.guide_scenarios, read from the run's spec)."""
    from profiling.experiments import claims
    from profiling.presentation import scenario_charts

    found = claims.stored_claims(store, list(runs["run_id"])) or claims.stored_claims(store)
    body = (f"<p class=\"meta\">From run {_e(found[0])}.</p>"
            + _table(found[1], ("claim", "verdict", "measured", "source"))) if found else (
        "<p>No claims measured yet: <code>python -m profiling claims</code>.</p>")
    for run in runs.itertuples():
        text = run.spec_json if isinstance(run.spec_json, str) else ""
        why = shape_problem("spec_json", text) if text else None
        spec = decode(run.spec_json, "spec_json", run.run_id)  # and a warning line
        if why:
            body += f"<p>Run {_e(run.run_id)}: results unreadable (spec_json {_e(why)}).</p>"
            continue
        try:
            if spec.get("kind") != "scenario" or "scenario" not in spec:
                continue
            results = {k: pd.DataFrame(v) for k, v in spec.get("results", {}).items()}
            summary = results.pop("summary", pd.DataFrame())
            layers = results.pop("layers", pd.DataFrame())
            figures = "".join(_figure(f) for f in scenario_charts.guide_figures(
                spec["scenario"], summary, layers, results)) if len(summary) else ""
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a hostile bundle
            body += f"<p>Run {_e(run.run_id)}: results unreadable ({_e(exc)}).</p>"
            continue
        body += (f"<h3>{_e(spec['scenario'])} · run {_e(run.run_id)}</h3>" + figures
                 + _table(summary, GUIDE_COLUMNS) + (_table(layers) if len(layers) else ""))
    return _section("Guide claims and scenarios", body)


def _format(value: Any, column: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        if column.endswith("_s"):
            return units.format_time(value)
        if column == "gbps":
            return units.format_gbps(value)
        if column == "utilization":
            return units.format_percent(value)
        return units.format_number(value)
    return str(value)


def _table(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    if frame.empty:
        return "<p>None.</p>"
    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td class=\"name\">{_e(_format(row[c], c))}</td>" for c in columns) + "</tr>"
        for _, row in frame.iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _compare_table(cases: pd.DataFrame) -> str:
    values, categories = charts.compare_table(cases)
    if values.empty:
        return "<p>No successful cases.</p>"
    legend = "".join(f"<span style=\"{charts.COMPARE_COLOURS[name]}\">{_e(name)}</span>"
                     for name, _ in charts.COMPARE_CATEGORIES)
    head = "<th class=\"name\">series</th>" + "".join(f"<th>{_e(c)}</th>" for c in values.columns)
    rows = []
    for series in values.index:
        cells = "".join(
            f"<td style=\"{charts.COMPARE_COLOURS.get(categories.loc[series, shape], '')}\" "
            f"title=\"{_e(categories.loc[series, shape])}\">{charts.format_us(values.loc[series, shape])}</td>"
            if pd.notna(values.loc[series, shape]) else "<td>–</td>"
            for shape in values.columns
        )
        rows.append(f"<tr><td class=\"name\">{_e(series)}</td>{cells}</tr>")
    return (f"<p class=\"legend\">Median µs per call; {_e(charts.RANKING_RULE)}: {legend}</p>"
            f"<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _environment(run_id: str, environment: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th class=\"name\">{_e(k)}</th><td class=\"name\">{_e(v)}</td></tr>"
                   for k, v in environment.items())
    return (f"<details><summary>{_e(run_id)}</summary>"
            f"<table><tbody>{rows or '<tr><td>not recorded</td></tr>'}</tbody></table></details>")
