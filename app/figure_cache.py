"""``profiling.presentation.charts`` with its Plotly figures built once per input.

Building a figure of a few dozen series costs 0.1–0.5 s (Plotly validates every property), and a
page redraws the figures it shows on every rerun. Figures are cached by their arguments (the cases'
content, the baseline…), so new data draws anew; they are kept as objects (cache_resource:
unpickling a figure would validate it again) and never mutated by ``st.plotly_chart``.
Use as ``from app.figure_cache import charts``; anything that is not a cached figure passes
through to ``profiling.presentation.charts``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import streamlit as st

from profiling.presentation import charts as _charts
from profiling.presentation import versus as _versus
from profiling.presentation.versus_svg import versus_svg

FIGURES = ("latency_vs_size", "effective_bandwidth", "speedup_vs_baseline", "utilization",
           "page_faults", "breakdown_bars", "semantics_matrix", "roofline")


@st.cache_resource(max_entries=64, show_spinner=False)
def _figure(name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(_charts, name)(*args, **kwargs)


def _cached(name: str):
    def draw(*args: Any, **kwargs: Any) -> Any:
        return _figure(name, *args, **kwargs)

    draw.__name__ = name
    draw.__doc__ = getattr(_charts, name).__doc__
    return draw


@st.cache_resource(max_entries=16, show_spinner=False)
def versus(cases: Any, base_run: str, threshold: float,
           names: tuple[tuple[str, str], ...]) -> tuple[Any, Any]:
    """(table, displayed table) of each run B against ``base_run`` A
    (profiling.presentation.versus), built once per input."""
    table = _versus.versus_table(cases, base_run, threshold)
    return table, _versus.versus_display(table, dict(names), base_run)


@st.cache_resource(max_entries=16, show_spinner=False)
def versus_chart(cases: Any, base_run: str, threshold: float,
                 names: tuple[tuple[str, str], ...], runs: tuple[str, ...] | None) -> str:
    """The SVG chart (versus_svg) of ``versus``'s table for the B runs ``runs``."""
    table = versus(cases, base_run, threshold, names)[0]
    return versus_svg(table, dict(names), base_run, threshold, runs)


class _Charts(SimpleNamespace):
    def __getattr__(self, name: str) -> Any:  # everything else: profiling.presentation.charts itself
        return getattr(_charts, name)


charts = _Charts(**{name: _cached(name) for name in FIGURES})
