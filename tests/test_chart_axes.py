"""Readable axes (profiling.presentation.charts._layout): log ticks that never crowd, margins that make room
for long tick labels."""

from __future__ import annotations

from helpers import synthetic_cases

from profiling.presentation import charts


def test_log_axes_over_decades_label_powers_of_ten_only():
    figure = charts.latency_vs_size(synthetic_cases())
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis.dtick == 1
    assert figure.layout.xaxis.exponentformat == "power"
    assert figure.layout.xaxis.minor.showgrid is False


def test_a_short_log_axis_gets_plain_labels_at_1_2_5():
    cases = synthetic_cases({"nn_relu": 1.0, "where": 1.3, "maximum": 2.0})
    figure = charts.speedup_vs_baseline(cases, "nn_relu")
    axis = figure.layout.yaxis
    assert axis.type == "log" and axis.tickmode == "array"
    assert 0.5 in axis.tickvals and 1.0 in axis.tickvals
    assert list(axis.ticktext) == [f"{v:.3g}" for v in axis.tickvals]
    assert len(axis.tickvals) >= 3


def test_long_tick_labels_push_the_axis_title_away():
    cases = synthetic_cases(modes=("eager", "function"))
    breakdown = cases[["case_id"]].assign(compute_us=10.0, memcpy_us=1.0, collective_us=0.0,
                                          idle_us=2.0, other_us=0.0)
    figure = charts.breakdown_bars(breakdown, cases)
    assert figure.layout.xaxis.automargin is True and figure.layout.xaxis.title.standoff == 12
