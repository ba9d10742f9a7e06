"""The machine picker the Compare page puts above its run list (team stores hold several)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import share


def machine_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's machine (older runs without one: '(unknown)')."""
    column = runs["machine"] if "machine" in runs.columns else pd.Series(None, index=runs.index)
    return column.fillna("(unknown)").astype(str)


def pick_machines(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs grouped by machine, the machine with the newest run first (so the page's default,
    the first complete run, stays the newest), newest first within one; with several
    machines, a multiselect (kept in the URL as ?machines=) keeps only the chosen ones."""
    runs = runs.assign(machine=machine_of(runs))
    newest = runs.groupby("machine")["created_at"].transform("max")
    runs = (runs.assign(_newest=newest)
            .sort_values(["_newest", "machine", "created_at"], ascending=[False, True, False],
                         kind="stable")
            .drop(columns="_newest"))
    machines = sorted(runs["machine"].unique())
    if len(machines) < 2:
        return runs
    wanted = share.keep_known(share.read_list("machines"), machines) or machines
    share.seed_widget("compare_machines", machines, wanted)
    chosen = st.multiselect("Machines", machines, key="compare_machines")
    share.write(machines=None if len(chosen) == len(machines) else chosen)
    return runs[runs["machine"].isin(chosen)]
