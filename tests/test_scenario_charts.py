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


def _fusion(rows: list[tuple[str, str, bool, str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": label, "label": label, "site": site, "kind": "conv",
                          "fused": fused, "fused_into": into, "kernels": kernels,
                          "self_time_us": 1.0} for label, site, fused, into, kernels in rows])


def test_fusion_heatmap_names_the_separate_op_of_every_variant():
    fusion = _fusion([
        ("nn_relu", "stem_act", True, "_FusedConv2D", ""),
        ("nn_relu", "out_act", False, "", "Relu"),
        ("maximum", "stem_act", False, "", ""),  # the trace missed this site's op
        ("maximum", "out_act", False, "", "Maximum"),
        ("ghost", "stem_act", False, "", ""),
    ])
    text = scenario_charts.fusion_figure(fusion).to_plotly_json()["data"][0]["text"]
    cells = [cell for row in text for cell in row if cell]
    assert "separate: -" not in cells
    assert text[0] == ["fused: _FusedConv2D",
                       "separate: Maximum (as at its other sites; not traced here)",
                       "separate: no op of this layer in the trace"]
    assert text[1][:2] == ["separate: Relu", "separate: Maximum"]


def test_identical_loss_curves_are_drawn_apart_and_said():
    steps = list(range(4))
    losses = pd.DataFrame(
        [{"label": label, "step": s, "loss": 1.0 / (s + 1)} for label in ("a", "b", "c")
         for s in steps] + [{"label": "d", "step": s, "loss": 2.0 / (s + 1)} for s in steps])
    figure = scenario_charts.loss_figure(losses).to_plotly_json()
    dashes = [t["line"]["dash"] for t in figure["data"]]
    symbols = [t["marker"]["symbol"] for t in figure["data"]]
    assert len(set(dashes)) == 4 and len(set(symbols)) == 4
    notes = [a["text"] for a in figure["layout"]["annotations"]]
    assert notes == ["identical losses, lines on top of each other: a, b, c"]
    assert scenario_charts.coinciding(losses[losses["label"] != "b"]) == [["a", "c"]]
    apart = scenario_charts.loss_figure(losses[losses["label"].isin(["a", "d"])])
    assert not apart.layout.annotations


def test_summary_table_has_readable_headers_and_ci_text():
    summary = _summary({"nn_relu": [0.001, 0.0011, 0.0012, 0.001, 0.0011, 0.0010],
                        "where": [0.002] * 6}).assign(
        fusable_sites=2, fused_sites=[2, 0], fused_into=["_FusedConv2D", ""],
        activation_kernels=["", "Greater,SelectV2"], final_loss=0.5, loss_vs_baseline=1.0,
        params="{}", reason="")
    table = scenario_charts.summary_table(summary)
    assert not [c for c in table.columns if "ci95" in c or c.count("_") > 1]
    assert list(table["fused sites"]) == ["2/2", "0/2"]
    assert table.loc[0, "train 95% CI"].startswith("[") and table.loc[0, "train 95% CI"].endswith(
        " ms")
    from profiling.presentation import units

    shown = units.readable(table, unit="ms").data.columns
    assert {"train step (ms)", "inference step (ms)"} <= set(shown)
