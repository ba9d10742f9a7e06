"""The lab's one significance rule (`RatioStats`): a difference is significant when the 95% CI
of the ratio t_variant / t_baseline lies wholly beyond the threshold, and the speedup is that
ratio inverted. By hand, then through every surface that decides: compare's CI gate, the
speedup chart's markers, History's changes and the claims' verdicts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from profiling.analysis.compare import compare_runs
from profiling.experiments import claims
from profiling.measurement.stats import RatioStats, ratio_stats, unpaired_ratio
from profiling.presentation.charts import speedup_table
from profiling.presentation.history import mark_changes


def ratio(low: float, high: float) -> RatioStats:
    return RatioStats((low + high) / 2, low, high, 9, True)


@pytest.mark.parametrize("low, high, threshold, change", [
    (1.01, 1.2, 0.0, "slower"), (0.8, 0.99, 0.0, "faster"), (0.9, 1.1, 0.0, ""),
    (1.0, 1.2, 0.0, ""), (0.8, 1.0, 0.0, ""),            # touching 1 is not beyond it
    (1.05, 1.2, 0.05, ""), (1.051, 1.2, 0.05, "slower"),  # touching 1 + threshold is not
    (0.8, 0.95, 0.05, ""), (0.8, 0.949, 0.05, "faster"),
    (1.02, 1.04, 0.05, ""),                               # real but within the threshold
    (math.nan, math.nan, 0.0, ""), (math.nan, 0.9, 0.0, "faster"),
])
def test_the_rule_by_hand(low, high, threshold, change):
    r = ratio(low, high)
    assert r.change(threshold) == change
    assert r.significant(threshold) == (change != "")


def test_side_of_a_bound_and_a_missing_ci():
    assert ratio(0.2, 0.3).side_of(1 / 3) == -1 and ratio(0.4, 0.5).side_of(1 / 3) == 1
    assert ratio(0.3, 0.4).side_of(1 / 3) == 0
    missing = ratio_stats(None, "x", float("nan"))
    assert missing.side_of(1.0) == 0 and not missing.significant()
    assert math.isnan(missing.speedup) and all(map(math.isnan, missing.speedup_ci95))


def test_speedup_is_the_inverse_with_the_bounds_swapped():
    r = RatioStats(0.8, 0.78, 0.82, 9, True)
    assert r.speedup == pytest.approx(1.25)
    assert r.speedup_ci95 == (pytest.approx(1 / 0.82), pytest.approx(1 / 0.78))
    assert r.speedup_fields() == {"speedup": pytest.approx(1.25),
                                  "speedup_ci95_low": pytest.approx(1 / 0.82),
                                  "speedup_ci95_high": pytest.approx(1 / 0.78)}
    assert math.isnan(RatioStats(0.0, -1.0, 0.0, 1, True).speedup)  # no positive ratio


def case(median: float, low: float, high: float, **extra) -> dict:
    return {"run_id": "r", "case_id": f"r-{extra.get('variant', 'nn_relu')}",
            "variant": "nn_relu", "label": extra.get("variant", "nn_relu"), "shape": "1000",
            "numel": 1000, "dtype": "float32", "device": "CPU:0", "threads": 1,
            "allocator": "bfc", "mode": "eager", "pass": "forward", "status": "ok",
            "median_s": median, "ci95_low_s": low, "ci95_high_s": high,
            "ci95_s": (high - low) / 2, "n_samples": 7, **extra}


@pytest.mark.parametrize("b_low, threshold, regression", [
    (1.05, 0.05, False),  # B's low / A's high = 1.05 exactly: touching is not a regression
    (1.06, 0.05, True), (1.06, 0.1, False), (0.99, 0.0, False), (1.001, 0.0, True),
])
def test_compare_gate_is_the_rule(b_low, threshold, regression):
    a = pd.DataFrame([case(0.9, 0.8, 1.0)])
    b = pd.DataFrame([case(b_low + 0.1, b_low, b_low + 0.2)])
    row = compare_runs(a, b, threshold).iloc[0]
    expected = unpaired_ratio(a.iloc[0].to_dict(), b.iloc[0].to_dict())
    assert bool(row.regression) is regression
    assert bool(row.regression) == (expected.change(threshold) == "slower")
    assert (row.speedup, row.speedup_ci95_low, row.speedup_ci95_high) == (
        pytest.approx(0.9 / (b_low + 0.1)), pytest.approx(expected.speedup_ci95[0]),
        pytest.approx(expected.speedup_ci95[1]))


def test_compare_improvement_is_the_rule_on_the_other_side():
    a = pd.DataFrame([case(1.0, 0.95, 1.0)])
    touching = compare_runs(a, pd.DataFrame([case(0.9, 0.8, 0.95)]), 0.05).iloc[0]
    assert not touching.improvement  # 0.95 / 0.95 = 1: on the threshold, not beyond it
    beyond = compare_runs(a, pd.DataFrame([case(0.9, 0.8, 0.9)]), 0.05).iloc[0]
    assert beyond.improvement and not beyond.regression


@pytest.mark.parametrize("ratio_high, significant", [(1.0, False), (0.999, True)])
def test_chart_markers_are_the_rule(ratio_high, significant):
    cases = pd.DataFrame([
        case(1.0, 0.9, 1.1, baseline_case_id="r-nn_relu", ratio_to_baseline=1.0,
             ratio_ci95_low=1.0, ratio_ci95_high=1.0),
        case(0.9, 0.8, 1.0, variant="maximum", baseline_case_id="r-nn_relu",
             ratio_to_baseline=0.95, ratio_ci95_low=0.9, ratio_ci95_high=ratio_high)])
    cases.loc[1, "variant"] = "maximum"
    row = speedup_table(cases, "nn_relu").iloc[0]
    assert bool(row.significant) is significant and row.paired
    assert row.speedup_low == pytest.approx(1 / ratio_high)


@pytest.mark.parametrize("second, change", [
    ((1.2, 1.1, 1.3), ""),         # its low touches the first point's high: no change
    ((1.2, 1.101, 1.3), "slower"),
    ((0.8, 0.7, 0.9), ""),          # touching from below
    ((0.8, 0.7, 0.899), "faster"),
])
def test_history_changes_are_the_rule(second, change):
    history = pd.DataFrame({"machine": ["m", "m"], "run_id": ["p", "q"],
                            "created_at": ["1", "2"], "median_s": [1.0, second[0]],
                            "ci95_low_s": [0.9, second[1]], "ci95_high_s": [1.1, second[2]],
                            "n_samples": [7, 7]})
    assert mark_changes(history).change.tolist() == ["", change]


def test_claim_verdicts_are_the_rule():
    # speedup CI wholly above 3 (ratio wholly below 1/3) holds; touching 3 is partly
    assert claims.speedup_verdict(RatioStats(0.3, 0.29, 0.33, 9, True), 3.0) == claims.HOLDS
    assert claims.speedup_verdict(RatioStats(0.3, 0.29, 1 / 3, 9, True), 3.0) == claims.PARTLY
    assert claims.speedup_verdict(RatioStats(0.5, 0.34, 0.6, 9, True), 3.0) == claims.NOT_HOLD
    assert claims.speedup_verdict(RatioStats(0.9, 0.8, 1.0, 9, True), 1.0) == claims.PARTLY
