"""History page: one case's median and CI across runs, per machine, with changes marked."""

from __future__ import annotations

import streamlit as st

from app import resources, share, tables
from app.guard import page_guard
from profiling.presentation import history


def pick_case(choices) -> dict[str, str]:
    """A selectbox per setting, each narrowing the next; kept in the URL."""
    filters: dict[str, str] = {}
    columns = st.columns(len(history.CHOICE_COLUMNS))
    for column, name in zip(columns, history.CHOICE_COLUMNS, strict=True):
        options = sorted(choices[name].dropna().astype(str).unique())
        if not options:
            continue
        wanted = share.read(name, options[0])
        share.seed_widget(f"history_{name}", options, wanted if wanted in options else options[0])
        filters[name] = column.selectbox(name, options, key=f"history_{name}")
        choices = choices[choices[name].astype(str) == filters[name]]
    share.write(**filters)
    return filters


def render() -> None:
    st.title("History")
    store = resources.store()
    choices = history.case_choices(store)
    if choices.empty:
        st.info("No successful cases yet: start a run on the Run page.")
        return
    filters = pick_case(choices)
    points = history.case_history(store, filters)
    machines = sorted(points["machine"].astype(str).unique())
    chosen = st.multiselect("Machines", machines, default=machines, key="history_machines")
    points = points[points["machine"].astype(str).isin(chosen)]
    axis = st.radio("Along", ["run time", "commit"], horizontal=True, key="history_axis")
    st.plotly_chart(history.history_figure(points, "commit" if axis == "commit" else
                                           "created_at"), key="chart_history")
    changes = points[points["change"] != ""]
    if len(changes):
        st.warning(f"{len(changes)} change(s) where the ratio to the previous run's median has a "
                   "95% CI wholly beyond 1: " + ", ".join(
            f"{r.machine} {r.run_id} {r.change}" for r in changes.itertuples()),
            icon=":material/trending_up:")
    st.caption("A change is marked (ring) where the ratio of a run's median to the previous "
               "run's on the same machine has a 95% CI (from the two medians' CIs) wholly "
               "beyond 1: the rule `compare` and the charts use.")
    st.plotly_chart(history.machines_figure(points), key="chart_machines")
    tables.show(points, key="history_table")


with page_guard("The History page"):
    render()
