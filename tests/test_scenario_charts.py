"""Scenario figures on hand-made summaries: error bars are the median's stored 95% CI, drawn
asymmetrically, so a wide spread around a small median never reaches below 0."""

from __future__ import annotations

import pandas as pd
import pytest

from profiling.measurement.stats import summarize_samples
from profiling.presentation import scenario_charts


def _summary(samples: dict[str, list[float]]) -> pd.DataFrame:
    """A scenario summary (the columns ScenarioResult.summary stores) from raw step seconds."""
    rows = []
    for label, seconds in samples.items():
        row = {"variant": label, "label": label, "status": "ok"}
        for key in ("train", "infer"):
            st = summarize_samples(seconds)
            row.update({f"{key}_median_s": st.median_s, f"{key}_iqr_s": st.iqr_s,
                        f"{key}_ci95_low_s": st.ci95_low_s,
                        f"{key}_ci95_high_s": st.ci95_high_s})
        rows.append(row)
    return pd.DataFrame(rows)


def test_step_time_whiskers_are_the_ci_and_never_go_below_it():
    # 'where': mostly ~1 ms with a few 40-60 ms stalls, so median - IQR < 0 (the old symmetric
    # IQR whisker reached -9 ms); 'steady' is tight.
    where = [0.0010] * 9 + [0.0011] * 3 + [0.040, 0.050, 0.060, 0.045, 0.055]
    steady = [0.0020 + i * 1e-5 for i in range(17)]
    summary = _summary({"where": where, "steady": steady})
    assert (summary["train_median_s"] - summary["train_iqr_s"]).iloc[0] < 0  # the hard case
    fig = scenario_charts.step_time_figure(summary)
    assert "95% CI" in fig.layout.yaxis.title.text and "IQR" not in fig.layout.yaxis.title.text
    for bar, key in zip(fig.data, ("train", "infer"), strict=True):
        err = bar.error_y
        assert err.visible and err.symmetric is False
        low = [m - d for m, d in zip(bar.y, err.arrayminus, strict=True)]
        high = [m + d for m, d in zip(bar.y, err.array, strict=True)]
        assert low == pytest.approx(list(summary[f"{key}_ci95_low_s"] * 1e3))
        assert high == pytest.approx(list(summary[f"{key}_ci95_high_s"] * 1e3))
        assert min(low) > 0
    assert err.arrayminus[0] != err.array[0]  # 'where' is skewed: the whisker is not symmetric


def test_step_time_without_a_stored_ci_draws_no_whisker():
    summary = _summary({"where": [0.001, 0.002, 0.003]}).drop(
        columns=["train_ci95_low_s", "train_ci95_high_s", "infer_ci95_low_s",
                 "infer_ci95_high_s"])
    fig = scenario_charts.step_time_figure(summary)
    assert all(bar.error_y.visible is False for bar in fig.data)
    assert list(fig.data[0].y) == pytest.approx([2.0])
