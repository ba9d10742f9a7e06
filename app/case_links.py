"""Each measured case as a table row with a link to its trace on the Traces page (one click
from a number to its evidence), and optionally ones that open it in XProf and in Perfetto. Used
by the Run and Compare pages."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from app import resources, tables
from profiling.presentation import charts, units

TRACE_COLUMN = "trace"
XPROF_COLUMN = "xprof"
PERFETTO_COLUMN = "perfetto"


def trace_url(run_id: str, case_id: str) -> str:
    """Relative link to the Traces page showing this case's stored trace (works under any base
    path: every page sits at the app's root)."""
    return "./traces?" + urlencode({"run": run_id, "case": case_id})


def xprof_url(run_id: str, case_id: str) -> str:
    """Relative link to the Traces page that opens this case's stored trace in XProf at once
    (the page's "Open in XProf" button, pressed by the ``xprof=1`` parameter)."""
    return trace_url(run_id, case_id) + "&xprof=1"


def perfetto_url(run_id: str, case_id: str) -> str:
    """Relative link to the Traces page that opens this case's stored trace in Perfetto at once
    (the page's "Open in Perfetto" button, pressed by the ``perfetto=1`` parameter)."""
    return trace_url(run_id, case_id) + "&perfetto=1"


def case_rows(cases: pd.DataFrame, traced: frozenset[str], unit: str = "µs",
              xprof: bool = False) -> pd.DataFrame:
    """One row per ok case: the trace link (None without a stored trace), label, shape, the settings that vary, median and CI in ``unit``,
    GB/s, utilization and faults per call."""
    frame = charts.ok_cases(cases)
    settings = [c for c in charts.varying_settings(frame) if c not in ("run_id", "run")]
    multi_run = "run_id" in frame.columns and frame["run_id"].nunique() > 1
    if multi_run:  # the run's short unique name (charts.run_names), as in the chart legends
        frame = frame.assign(run=frame["run_id"].astype(str).map(charts.run_names(frame)))
    columns = (["run"] if multi_run else []) + ["label", "shape", *settings]
    rows = frame[columns].astype(str).copy()
    scale = dict(units.TIME_UNITS)[unit]
    rows[f"median ({unit})"] = frame["median_s"].astype(float) / scale
    rows["CI95"] = [units.format_ci(v, unit).removesuffix(f" {unit}") for v in frame["ci95_s"]]
    rows["gbps"] = pd.to_numeric(frame["gbps"], errors="coerce")
    rows["utilization"] = pd.to_numeric(frame["utilization"], errors="coerce")
    rows["faults/call"] = pd.to_numeric(frame["page_faults_per_call"], errors="coerce")
    # First: where a click lands whatever the table's width.
    ids = list(zip(frame["run_id"], frame["case_id"], strict=True))
    if xprof:
        rows.insert(0, PERFETTO_COLUMN,
                    [perfetto_url(r, c) if c in traced else None for r, c in ids])
        rows.insert(0, XPROF_COLUMN, [xprof_url(r, c) if c in traced else None for r, c in ids])
    rows.insert(0, TRACE_COLUMN, [trace_url(r, c) if c in traced else None for r, c in ids])
    return rows.reset_index(drop=True)


def show(cases: pd.DataFrame, key: str, unit: str = "µs", xprof: bool = False) -> None:
    """The case table with a clickable "open trace" link per row (and "open in XProf" and
    "open in Perfetto" with ``xprof``)."""
    run_ids = sorted(set(cases["run_id"])) if not cases.empty else []
    rows = case_rows(cases, resources.traced_cases(run_ids), unit, xprof)
    if rows.empty:
        return
    tables.show(
        rows, key=key, style=units.readable,
        column_config={
            TRACE_COLUMN: st.column_config.LinkColumn(
                "trace", display_text="open trace", help="This case's trace on the Traces page"),
            XPROF_COLUMN: st.column_config.LinkColumn(
                "XProf", display_text="open in XProf",
                help="This case's trace in XProf's own UI (trace viewer, op profile, memory)"),
            PERFETTO_COLUMN: st.column_config.LinkColumn(
                "Perfetto", display_text="open in Perfetto",
                help="This case's trace in Perfetto's UI, served offline by this dashboard"),
            "gbps": st.column_config.Column("GB/s"),
        },
    )
