"""One self-contained HTML file for a comparison: works offline (plotly.js inlined once). The
page is the Jinja2 template templates/report.html.j2 with autoescape on, so every text from a
user (labels, run labels, environment values, reasons, a bundle's spec) is HTML-escaped; only
plotly.js and the charts' own HTML go in as Markup."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
from markupsafe import Markup

from profiling.presentation import charts, noise_text, units, versus
from profiling.presentation.versus_svg import versus_svg
from profiling.storage.stored_json import decode, shape_problem

if TYPE_CHECKING:
    import jinja2

CASE_TABLE_COLUMNS = ("run_id", "label", "shape", "dtype", "device", "threads", "mode", "pass",
                      "status", "reason", "median_s", "ci95_s", "gbps", "utilization",
                      "page_faults_per_call")


@functools.cache
def _template() -> jinja2.Template:
    # Jinja2 and plotly.offline are imported when a report is made: the Compare page imports
    # this module for filter_cases, and they added 70 ms to its first view.
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("profiling.presentation", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2")


def filter_cases(cases: pd.DataFrame, filters: Mapping[str, Sequence] | None) -> pd.DataFrame:
    """Keep rows whose column value is among the chosen ones (as strings); empty choice = all."""
    for column, chosen in (filters or {}).items():
        if chosen and column in cases.columns:
            cases = cases[cases[column].astype(str).isin([str(c) for c in chosen])]
    return cases


def render_html(store: Any, run_ids: Sequence[str], baseline: str = "nn_relu",
                filters: Mapping[str, Sequence] | None = None,
                semantics: pd.DataFrame | None = None, base_run: str | None = None,
                threshold: float = charts.DEFAULT_THRESHOLD,
                chart_runs: Sequence[str] | None = None) -> str:
    """The comparison of ``run_ids`` (with two or more, each run B against ``base_run`` A,
    default the first; charts, coloured results table, fusion, semantics, environment) as one
    HTML document string. ``filters`` maps case columns (dtype, mode, …) to kept values;
    ``semantics`` is ``relu_impls.semantics.semantics_table()`` (section left out when None);
    ``threshold`` (a fraction) is the smallest change a verdict or a colour calls one;
    ``chart_runs``: the B runs the B-vs-A chart draws (versus_svg.drawn_runs; the table has all)."""
    run_ids = list(run_ids)
    runs = store.list_runs()
    runs = runs[runs["run_id"].isin(run_ids)]
    cases = filter_cases(store.cases(run_ids), filters)
    kept = set(cases["case_id"])
    breakdown = store.breakdown(run_ids)
    breakdown = breakdown[breakdown["case_id"].isin(kept)]
    fusion = store.fusion(run_ids)
    noise = noise_text.notes(runs, charts.run_names(runs.rename(columns={"label": "run_label"})))
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    filter_text = ", ".join(f"{k}: {', '.join(map(str, v))}" for k, v in (filters or {}).items() if v)
    return _template().render(
        run_ids=run_ids, baseline=baseline, filter_text=filter_text, generated=generated,
        plotly_js=Markup(_plotly_js()),
        runs=_table(runs, ("run_id", "created_at", "status", "n_cases", "label",
                           "noise_verdict")),
        noise=noise, noise_survives=noise_text.SURVIVES,
        results=_compare_table(cases, baseline, threshold),
        versus=_versus(cases, runs, base_run or run_ids[0], threshold, chart_runs)
        if len(run_ids) > 1 else None,
        charts=_charts(profile_cases(cases), breakdown, baseline, store.roof(run_ids)),
        fusion=_table(charts.fusion_table(fusion)) if not fusion.empty else None,
        semantics=_figure(charts.semantics_matrix(semantics)) if semantics is not None else None,
        **_guide(store, runs),
        models=_models(runs),
        cases=_table(cases, CASE_TABLE_COLUMNS),
        environments=[(run_id, list(store.environment(run_id).items())) for run_id in run_ids],
    ) + "\n"


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def profile_cases(cases: pd.DataFrame) -> pd.DataFrame:
    """The micro-benchmark cases only: charts against element count must not draw a
    scenario's or a model's step time there (those have their own tables)."""
    if "kind" not in cases.columns:
        return cases
    return cases[cases["kind"].isna() | (cases["kind"].astype(str) == "profile")]


def _versus(cases: pd.DataFrame, runs: pd.DataFrame, base_run: str, threshold: float,
            chart_runs: Sequence[str] | None) -> dict[str, Any]:
    """Each run B against A (versus.py): the displayed table and its chart."""
    names = charts.run_names(runs.rename(columns={"label": "run_label"}))
    table = versus.versus_table(cases, base_run, threshold)
    return {"base": names.get(base_run, base_run), "threshold": units.format_percent(threshold),
            "table": _table(versus.versus_display(table, names, base_run)),
            "chart": Markup(versus_svg(table, names, base_run, threshold, chart_runs))}


def _figure(figure: go.Figure) -> Markup:
    return Markup(figure.to_html(full_html=False, include_plotlyjs=False,
                                 default_height="460px", config={"displaylogo": False}))


def _charts(cases: pd.DataFrame, breakdown: pd.DataFrame, baseline: str,
            roof: pd.DataFrame) -> list[Markup]:
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
    return [_figure(f) for f in figures]


GUIDE_COLUMNS = ("label", "mode", "status", "median_s", "ci95_low_s", "ci95_high_s",
                 "samples_per_s", "final_loss", "loss_vs_float32", "loss_vs_float", "accuracy",
                 "half_ops", "zero_fraction", "dense_bytes", "coo_bytes", "bitmask_bytes",
                 "dead_fraction", "max_activation_norm", "max_grad_norm", "max_abs_error",
                 "error_in_scales", "reason")


def _guide(store: Any, runs: pd.DataFrame) -> dict[str, Any]:
    """The guide's claims (from a selected claims run, else the newest stored one) and each
    selected guide scenario's results (profiling.experiments.guide_scenarios, read from the
    run's spec): the template's `claims` and `scenarios`."""
    from profiling.experiments import claims
    from profiling.presentation import scenario_charts
    from profiling.presentation.claims import shown

    found = claims.stored_claims(store, list(runs["run_id"])) or claims.stored_claims(store)
    scenarios = []
    for run in runs.itertuples():
        text = run.spec_json if isinstance(run.spec_json, str) else ""
        why = shape_problem("spec_json", text) if text else None
        spec = decode(run.spec_json, "spec_json", run.run_id)  # and a warning line
        if why:
            scenarios.append({"run_id": run.run_id,
                              "error": f"results unreadable (spec_json {why})"})
            continue
        try:
            if spec.get("kind") != "scenario" or "scenario" not in spec:
                continue
            results = {k: pd.DataFrame(v) for k, v in spec.get("results", {}).items()}
            summary = results.pop("summary", pd.DataFrame())
            layers = results.pop("layers", pd.DataFrame())
            figures = [_figure(f) for f in scenario_charts.guide_figures(
                spec["scenario"], summary, layers, results)] if len(summary) else []
            scenarios.append({"scenario": spec["scenario"], "run_id": run.run_id, "error": None,
                              "figures": figures, "summary": _table(summary, GUIDE_COLUMNS),
                              "layers": _table(layers) if len(layers) else None})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a hostile bundle
            scenarios.append({"run_id": run.run_id, "error": str(exc)})
    return {"claims": {"run_id": found[0], "table": _table(shown(found[1]))}
            if found else None, "scenarios": scenarios}


def _models(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Each selected model run (kind model): what to do in one sentence, the rewrites' table and
    chart, the activation layers (profiling.presentation.model_summary, as on the Model page)."""
    from profiling.presentation import model_summary

    out = []
    for run in runs.itertuples():
        if getattr(run, "kind", None) != "model":
            continue
        spec = decode(run.spec_json, "spec_json", run.run_id)
        rewrites = [r for r in spec.get("rewrites") or [] if isinstance(r, dict)]
        layers = [a for a in spec.get("activations") or [] if isinstance(a, dict)]
        try:
            out.append({"run_id": run.run_id, "model": spec.get("model", "?"),
                        "mode": spec.get("mode", "?"), "error": None,
                        "decision": model_summary.decision({"rewrites": rewrites}),
                        "rewrites": _table(model_summary.rewrite_table(rewrites)),
                        "chart": _figure(model_summary.speedup_figure(rewrites)),
                        "layers": _table(model_summary.layer_table(layers))})
        except (KeyError, TypeError, ValueError) as exc:  # a hostile bundle's spec
            out.append({"run_id": run.run_id, "error": str(exc)})
    return out


def _format(value: Any, column: str = "") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return units.MISSING
    if isinstance(value, float):
        if column.endswith("_s"):
            return units.format_time(value)
        if column == "gbps":
            return units.format_gbps(value)
        if column == "utilization":
            return units.format_percent(value)
        return units.format_number(value)
    return str(value)


def _table(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[str, list]:
    """The template's table: column names and rows of display text (escaped by the template)."""
    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    return {"columns": columns,
            "rows": [[_format(row[c], c) for c in columns] for _, row in frame.iterrows()]}


def _compare_table(cases: pd.DataFrame, baseline: str, threshold: float) -> dict[str, Any]:
    """The results table coloured by category: per series a cell per shape (None: no case)."""
    values, categories = charts.compare_table(cases, baseline, threshold)
    rows = [(series, [{"text": values.loc[series, shape],
                       "category": categories.loc[series, shape],
                       "style": charts.COMPARE_COLOURS.get(categories.loc[series, shape], "")}
                      if pd.notna(values.loc[series, shape]) else None
                      for shape in values.columns])
            for series in values.index]
    return {"rule": charts.RANKING_RULE, "columns": list(values.columns), "rows": rows,
            "legend": [(text, charts.COMPARE_COLOURS[name])
                       for name, text in charts.COMPARE_LEGEND.items()]}
