"""Chart functions on synthetic frames with the store's columns: check the figure JSON."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import as_json, synthetic_cases, traces_named

from profiling.presentation import charts


def test_latency_vs_size_is_log_log_with_one_line_and_band_per_variant():
    cases = synthetic_cases()
    fig = as_json(charts.latency_vs_size(cases))
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert fig["layout"]["yaxis"]["type"] == "log"
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    bands = [t for t in fig["data"] if t.get("fill") == "toself"]
    assert all(t["mode"] == "lines" for t in bands)
    assert [t["name"] for t in lines] == ["nn_relu", "where", "maximum"]
    assert len(bands) == 3
    nn = traces_named(fig, "nn_relu")[0]
    assert nn["x"] == [1000, 100_000, 1_000_000]
    # µs on the axis: 1000 elements at 1 ns + 1 µs overhead = 2 µs.
    assert nn["y"][0] == pytest.approx(2.0)
    band = bands[0]
    assert max(band["y"]) == pytest.approx(max(nn["y"]) * 1.02)
    assert min(band["y"]) == pytest.approx(min(nn["y"]) * 0.98)


def test_series_names_add_only_the_settings_that_vary():
    cases = synthetic_cases(modes=("eager", "function"))
    names = set(charts.series_names(cases))
    assert "nn_relu · eager" in names and "where · function" in names
    assert not any("float32" in n for n in names)


def test_failed_and_skipped_cases_are_not_drawn():
    cases = synthetic_cases()
    cases.loc[cases["variant"] == "maximum", "status"] = "skipped"
    fig = as_json(charts.latency_vs_size(cases))
    assert not traces_named(fig, "maximum")


def test_empty_input_gives_an_annotated_empty_figure():
    empty = synthetic_cases().iloc[0:0]
    for function in (
        charts.latency_vs_size,
        charts.effective_bandwidth,
        charts.utilization,
        charts.page_faults,
    ):
        fig = as_json(function(empty))
        assert fig["data"] == []
        assert fig["layout"]["annotations"][0]["text"] == charts.EMPTY_MESSAGE


def test_bandwidth_has_calibrated_peak_as_ceiling_line():
    fig = as_json(charts.effective_bandwidth(synthetic_cases(peak_gbps=20.0)))
    assert fig["layout"]["xaxis"]["type"] == "log"
    ceiling = [t for t in fig["data"] if t["name"].startswith("roof peak")]
    assert len(ceiling) == 1
    assert ceiling[0]["y"] == [20.0, 20.0]
    assert ceiling[0]["x"] == [1000, 1_000_000]
    assert ceiling[0]["line"]["dash"] == "dash"


def test_bandwidth_without_calibration_has_no_ceiling():
    fig = as_json(charts.effective_bandwidth(synthetic_cases(peak_gbps=None)))
    assert not [t for t in fig["data"] if t["name"].startswith("roof peak")]
    assert len(fig["data"]) == 3


def test_speedup_table_ratios_and_significance():
    table = charts.speedup_table(synthetic_cases(ci_fraction=0.04), baseline="nn_relu")
    assert set(table["variant"]) == {"where", "maximum"}
    maximum = table[table["variant"] == "maximum"]
    # maximum is 3x slower (plus the shared 1 µs) -> speedup < 1 and clearly significant.
    assert (maximum["speedup"] < 0.51).all()
    assert maximum["significant"].all()
    # where is 5% slower with ±4% CIs: the CIs overlap at every size -> not significant.
    where = table[table["variant"] == "where"]
    assert not where["significant"].any()
    assert (table["speedup_low"] <= table["speedup"]).all()
    assert (table["speedup"] <= table["speedup_high"]).all()


def test_speedup_chart_marks_overlapping_cis_and_has_whiskers():
    fig = as_json(charts.speedup_vs_baseline(synthetic_cases(ci_fraction=0.04), "nn_relu"))
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert fig["layout"]["yaxis"]["type"] == "log"
    where = traces_named(fig, "where")[0]
    maximum = traces_named(fig, "maximum")[0]
    assert set(where["marker"]["symbol"]) == {"circle-open"}
    assert set(maximum["marker"]["symbol"]) == {"circle"}
    assert where["error_y"]["symmetric"] is False
    assert all(v > 0 for v in where["error_y"]["array"])
    assert traces_named(fig, "not significant (CI includes 1)")
    assert any(s.get("y0") == 1.0 for s in fig["layout"]["shapes"])


def test_speedup_without_baseline_says_so():
    cases = synthetic_cases(variants={"where": 1.0, "maximum": 2.0})
    fig = as_json(charts.speedup_vs_baseline(cases, "nn_relu"))
    assert fig["data"] == []
    assert "nn_relu" in fig["layout"]["annotations"][0]["text"]


def test_utilization_is_percent_of_peak():
    cases = synthetic_cases()
    fig = as_json(charts.utilization(cases))
    nn = traces_named(fig, "nn_relu")[0]
    expected = (cases[cases["variant"] == "nn_relu"]["utilization"] * 100).tolist()
    assert nn["y"] == pytest.approx(expected)
    assert fig["layout"]["yaxis"]["rangemode"] == "tozero"
    assert [shape["y0"] for shape in fig["layout"]["shapes"]] == [100.0]


def test_page_faults_chart():
    fig = as_json(charts.page_faults(synthetic_cases()))
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert traces_named(fig, "where")[0]["y"] == [0.5, 0.5, 0.5]


def test_breakdown_bars_stack_the_five_parts():
    cases = synthetic_cases()
    breakdown = pd.DataFrame(
        {
            "case_id": cases["case_id"][:2],
            "compute_us": [10.0, 20.0],
            "memcpy_us": [1.0, 2.0],
            "collective_us": [0.0, 0.0],
            "idle_us": [5.0, 1.0],
            "other_us": [0.5, 0.5],
        }
    )
    fig = as_json(charts.breakdown_bars(breakdown, cases, calls=2))
    assert fig["layout"]["barmode"] == "stack"
    assert [t["name"] for t in fig["data"]] == ["compute", "memcpy", "collective", "idle", "other"]
    compute = traces_named(fig, "compute")[0]
    assert compute["orientation"] == "h"
    # per call: the trace's µs over its 2 calls, by size from the top; the bars are shares
    assert list(compute["customdata"]) == [5.0, 10.0]
    assert compute["x"] == pytest.approx([10 / 16.5 * 100, 20 / 23.5 * 100])
    assert compute["y"][0].endswith("· 8.25 µs/call") and compute["y"][1].endswith("11.8 µs/call")
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"
    # The plot is as tall as its cases need and the legend sits above it, not clipped.
    assert fig["layout"]["height"] >= 300 and fig["layout"]["legend"]["orientation"] == "h"


def test_breakdown_bars_keep_a_small_case_visible_beside_a_large_one():
    cases = synthetic_cases()
    small, large = cases["case_id"].iloc[0], cases["case_id"].iloc[-1]
    breakdown = pd.DataFrame({"case_id": [small, large], "compute_us": [3.0, 3e6],
                              "memcpy_us": [0.0, 0.0], "collective_us": [0.0, 0.0],
                              "idle_us": [3.0, 0.0], "other_us": [0.0, 0.0]})
    fig = as_json(charts.breakdown_bars(breakdown, cases))
    compute = traces_named(fig, "compute")[0]
    idle = traces_named(fig, "idle")[0]
    assert min(a + b for a, b in zip(compute["x"], idle["x"], strict=True)) == pytest.approx(100)


def test_compare_categories_follow_ratio_to_best():
    long = charts.compare_categories(
        synthetic_cases(variants={"nn_relu": 1.0, "where": 1.05, "maximum": 3.0, "leaky": 12.0})
    )
    big = long[long["shape"] == "1000x1000"].set_index("label")
    assert big.loc["nn_relu", "category"] == "best"
    assert big.loc["where", "category"] == "within 10%"
    assert big.loc["maximum", "category"] == "2x worse"
    assert big.loc["leaky", "category"] == "5x worse"
    assert big.loc["nn_relu", "ratio_to_best"] == pytest.approx(1.0)


def test_compare_category_thresholds():
    assert [charts.compare_category(r) for r in (1.0, 1.005, 1.05, 1.5, 2.5, 6.0)] == [
        "best",
        "best",
        "within 10%",
        "slower",
        "2x worse",
        "5x worse",
    ]


def test_compare_table_is_wide_by_shape_and_styler_colours_best():
    cases = synthetic_cases()
    values, categories = charts.compare_table(cases)
    assert list(values.columns) == ["1000", "100x1000", "1000x1000"]
    assert list(values.index) == ["nn_relu", "where", "maximum"]
    assert categories.loc["nn_relu", "1000x1000"] == "best"
    html_table = charts.compare_styler(cases).to_html()
    assert "#1b7f3b" in html_table  # the colour of "best"


def test_labels_are_escaped_in_figures():
    cases = synthetic_cases(variants={"nn_relu": 1.0})
    cases["label"] = "<b>x</b>"
    fig = as_json(charts.latency_vs_size(cases))
    assert "&lt;b&gt;x&lt;/b&gt;" in [t["name"] for t in fig["data"]]


def test_fusion_table_converts_time_to_us():
    fusion = pd.DataFrame(
        [
            dict(
                case_id="c",
                variant="nn_relu",
                block="conv",
                fused=True,
                fused_into="_FusedConv2D",
                kernels=1,
                time_s=2e-6,
                time_vs_fused=1.0,
                hlo_fusions=0,
                instructions_before=3,
                instructions_after=3,
                compiled=False,
                reason="",
            )
        ]
    )
    table = charts.fusion_table(fusion)
    assert table.loc[0, "time_us"] == pytest.approx(2.0)
    assert table.loc[0, "fused_into"] == "_FusedConv2D"
    assert table.loc[0, "speedup"] == "1.00×"  # no CI stored, none shown


def test_fusion_table_shows_the_speedup_over_the_fused_block():
    fusion = pd.DataFrame([
        dict(variant="where", block="conv", time_s=2e-6, time_vs_fused=1.25,
             ratio_ci95_low=1.2, ratio_ci95_high=1.3),
        dict(variant="odd", block="conv", time_s=2e-6, time_vs_fused=None,
             ratio_ci95_low=None, ratio_ci95_high=None)])
    table = charts.fusion_table(fusion)
    assert table.loc[0, "speedup"] == "0.800× [0.769, 0.833]"  # 1 / 1.3, 1 / 1.2
    assert pd.isna(table.loc[1, "speedup"]) and "time_vs_fused" not in table.columns


def semantics_row(variant: str, dtype: str, nan: str, bitwise: bool) -> dict:
    """A semantics_table row that matches nn_relu everywhere except, maybe, NaN and bitwise."""
    return dict(variant=variant, dtype=dtype, nan=nan, neg_zero="0.0", pos_inf="inf",
                neg_inf="0.0", grad_at_zero="0.0", bitwise_equal_nn_relu=bitwise)


def test_semantics_matrix_highlights_differences_from_nn_relu():
    table = pd.DataFrame(
        [
            semantics_row("nn_relu", "float32", nan="nan", bitwise=True),
            semantics_row("where", "float32", nan="0.0", bitwise=False),
            semantics_row("where", "float64", nan="nan", bitwise=False),
        ]
    )
    fig = as_json(charts.semantics_matrix(table))
    heat = fig["data"][0]
    assert heat["type"] == "heatmap"
    assert heat["y"] == ["nn_relu (float32)", "where (float32)"]
    assert heat["z"][0] == [0, 0, 0, 0, 0, 0]
    assert heat["z"][1][0] == 1  # NaN handled differently
    assert heat["z"][1][-1] == 1


def test_failed_cases_lists_the_skipped_with_their_reason():
    cases = synthetic_cases()
    cases.loc[cases["variant"] == "maximum", ["status", "reason"]] = ["skipped", "no float64"]
    failed = charts.failed_cases(cases)
    assert list(failed.columns) == list(charts.FAILED_CASE_COLUMNS)
    assert set(failed["label"]) == {"maximum"} and set(failed["reason"]) == {"no float64"}
    assert charts.failed_cases(cases.iloc[0:0]).empty


def test_figures_built_without_validation_are_valid_plotly():
    """Latency, bandwidth, utilization, page faults and speedup skip Plotly's validation for
    speed: what they build must still pass it (a wrong property name would raise here)."""
    import plotly.graph_objects as go

    cases = pd.concat([synthetic_cases(run_id="a", modes=("eager", "function")),
                       synthetic_cases(run_id="b")], ignore_index=True)
    for function in (charts.latency_vs_size, charts.effective_bandwidth, charts.utilization,
                     charts.page_faults, lambda c: charts.speedup_vs_baseline(c, "nn_relu")):
        figure = function(cases)
        assert len(figure.data) >= 6  # a series per variant (but the baseline), mode and run
        checked = go.Figure(figure.to_dict())  # validates every trace property
        assert [t.name for t in checked.data] == [t.name for t in figure.data]
    broken = charts._figure_of([dict(type="scatter", x=[1], y=[1], colour="red")])  # noqa: SLF001
    with pytest.raises(ValueError, match="colour"):
        go.Figure(broken.to_dict())
