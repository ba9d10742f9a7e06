"""One case across runs, per machine: its median and CI over time (or commits), with changes
marked where the ratio of two consecutive points has a 95% CI wholly beyond 1 (the lab's one
significance rule, `RatioStats.change`); and the same case across machines.

`parse_filter("variant=nn_relu,shape=1000000,mode=eager")` -> {column: value};
`case_history(store, filters)` reads the matching successful cases (one per run) with their
run's time, machine and commit; `mark_changes` and the figures are pure functions of that frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from profiling.measurement.stats import unpaired_ratio
from profiling.presentation.charts import _colour, _layout, empty_figure
from profiling.storage.store import CASE_COLUMNS
from profiling.storage.stored_json import decode

RUN_KEYS = ("machine", "run_label", "host", "status", "commit")
HISTORY_COLUMNS = ["machine", "run_id", "created_at", "commit", "run_label", "case_id",
                   "median_s", "ci95_low_s", "ci95_high_s", "n_samples", "change"]


class FilterError(ValueError):
    """A filter this code cannot read; str() is one line."""


def parse_filter(text: str, keys: tuple[str, ...] | None = None) -> dict[str, str]:
    """'k=v,k2=v2' -> {'k': 'v', 'k2': 'v2'}; FilterError naming the bad part or key."""
    allowed = keys or (*CASE_COLUMNS, *RUN_KEYS)
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise FilterError(f"bad filter part {part[:60]!r}; expected key=value")
        if key not in allowed:
            raise FilterError(f"unknown filter key {key[:40]!r}; accepted: {', '.join(allowed)}")
        out[key] = value.strip()
    if not out:
        raise FilterError("empty filter; e.g. variant=nn_relu,shape=1000000,mode=eager")
    return out


def case_history(store: Any, filters: Mapping[str, str]) -> pd.DataFrame:
    """HISTORY_COLUMNS for every run holding a successful case that matches, oldest first;
    FilterError when a run holds several matching cases (the filter is ambiguous)."""
    # the commit is matched in Python (it lives inside the runs' JSON)
    df = store.case_across_runs({k: v for k, v in filters.items() if k != "commit"})
    df["commit"] = [_commit(r, m, e) for r, m, e in zip(df.run_id, df.machine_json,
                                                        df.environment_json, strict=True)]
    if "commit" in filters:
        df = df[df["commit"].fillna("").str.startswith(filters["commit"])]
    counts = df.groupby("run_id").size()
    if (counts > 1).any():
        run_id = counts[counts > 1].index[0]
        raise FilterError(f"the filter matches {int(counts.max())} cases of run {run_id}; "
                          "narrow it (e.g. add dtype=, threads=, device=, pass=)")
    df = df.assign(change="")
    return mark_changes(df.reset_index(drop=True))[HISTORY_COLUMNS]


def _commit(run_id: str, machine_json: Any, environment_json: Any) -> str | None:
    for column, text in (("machine_json", machine_json), ("environment_json", environment_json)):
        commit = decode(text, column, run_id).get("git_commit")
        if commit:
            return str(commit)
    return None


def mark_changes(history: pd.DataFrame) -> pd.DataFrame:
    """`change` = 'slower' / 'faster' where the ratio of a point to the previous point of the
    same machine has a 95% CI wholly beyond 1 (`RatioStats.change`, from the two medians' CIs:
    the same rule as `compare`); a point without a CI is never a change."""
    out = history.copy()
    out["change"] = ""
    for _, group in out.sort_values(["created_at", "run_id"]).groupby("machine", sort=False):
        prev = None
        for idx, row in group.iterrows():
            if prev is not None:
                ratio = unpaired_ratio(_stats(prev), _stats(row))
                out.loc[idx, "change"] = ratio.change() if ratio is not None else ""
            prev = row
    return out


def _stats(row: Any) -> dict:
    return {k: row.get(k) for k in ("median_s", "ci95_low_s", "ci95_high_s", "n_samples")}


def history_figure(history: pd.DataFrame, x: str = "created_at",
                   title: str = "Median per run, 95% CI") -> go.Figure:
    """A line per machine: the median (µs) with its CI as error bars, over `x` (created_at
    or commit); changes marked with a red (slower) or green (faster) ring."""
    if history.empty:
        return empty_figure(title, "No run holds a successful case matching the filter")
    fig = go.Figure()
    for i, (machine, g) in enumerate(history.groupby("machine", sort=True)):
        xs = g[x].fillna("?").astype(str).str[:12] if x == "commit" else g[x]
        us = g.median_s * 1e6
        fig.add_trace(go.Scatter(
            x=xs, y=us, mode="lines+markers", name=str(machine), line={"color": _colour(i)},
            error_y={"type": "data", "symmetric": False,
                     "array": (g.ci95_high_s * 1e6 - us).clip(lower=0),
                     "arrayminus": (us - g.ci95_low_s * 1e6).clip(lower=0)},
            customdata=g[["run_id"]].to_numpy(),
            hovertemplate="%{customdata[0]}<br>%{y:.2f} µs<extra>" + str(machine) + "</extra>"))
        for change, colour in (("slower", "#d62728"), ("faster", "#2ca02c")):
            hit = g[g.change == change]
            if len(hit):
                fig.add_trace(go.Scatter(
                    x=xs[hit.index], y=hit.median_s * 1e6, mode="markers",
                    name=f"{machine}: {change} (ratio CI excludes 1)",
                    marker={"size": 16, "symbol": "circle-open", "color": colour,
                            "line": {"width": 3}}))
    return _layout(fig, title, "commit" if x == "commit" else "run time", "median (µs)")


def machines_figure(history: pd.DataFrame, title: str = "Newest run per machine") -> go.Figure:
    """One bar per machine: the case's median (µs) in its newest run, CI as error bars."""
    if history.empty:
        return empty_figure(title, "No run holds a successful case matching the filter")
    newest = (history.sort_values(["created_at", "run_id"]).groupby("machine").tail(1)
              .sort_values("machine"))
    us = newest.median_s * 1e6
    fig = go.Figure(go.Bar(
        x=newest.machine.astype(str), y=us,
        marker={"color": [_colour(i) for i in range(len(newest))]},
        error_y={"type": "data", "symmetric": False,
                 "array": (newest.ci95_high_s * 1e6 - us).clip(lower=0),
                 "arrayminus": (us - newest.ci95_low_s * 1e6).clip(lower=0)},
        customdata=newest[["run_id"]].to_numpy(),
        hovertemplate="%{x}: %{y:.2f} µs<br>%{customdata[0]}<extra></extra>"))
    return _layout(fig, title, "machine", "median (µs)")


def newest_matching_run(store: Any, text: str, exclude: str | None = None) -> str:
    """The newest run (not `exclude`) whose machine/label/host/status/commit match
    'machine=X,label=main' (label = the run's label); UnknownRunError when none does."""
    from profiling.storage.store import UnknownRunError

    filters = parse_filter(text, ("machine", "label", "host", "status", "commit"))
    runs = store.runs_newest_first()
    runs["commit"] = [_commit(r, m, e) for r, m, e in zip(runs.run_id, runs.machine_json,
                                                          runs.environment_json, strict=True)]
    for key, value in filters.items():
        column = runs[key].fillna("").astype(str)
        runs = runs[column.str.startswith(value) if key == "commit" else column == value]
    runs = runs[runs.run_id != exclude]
    if runs.empty:
        raise UnknownRunError(f"(no run matches {text})")
    return str(runs.run_id.iloc[0])


CHOICE_COLUMNS = ("variant", "shape", "dtype", "device", "threads", "mode", "pass")


def case_choices(store: Any) -> pd.DataFrame:
    """The distinct CHOICE_COLUMNS settings of successful cases, with the machines that ran
    them (column machine), for pickers."""
    return store.case_settings(CHOICE_COLUMNS)
