"""B against A (profiling.presentation.versus) on synthetic runs: matching, verdicts by the
one rule, the order by effect, the CSV and the chart's whiskers and threshold band."""

from __future__ import annotations

import csv
import io
import json
import math

import pandas as pd
import pytest
from helpers import as_json, synthetic_cases

from profiling.presentation import versus
from profiling.presentation.charts import variant_colours

A, B, C = "20260101-000000-aaaaaa", "20260101-000001-bbbbbb", "20260101-000002-cccccc"


def three_runs() -> pd.DataFrame:
    return pd.concat([
        synthetic_cases(run_id=A),
        synthetic_cases(variants={"nn_relu": 1.0, "where": 0.5, "maximum": 3.05}, run_id=B),
        synthetic_cases(variants={"nn_relu": 2.0, "where": 1.05}, run_id=C),
    ])


def test_each_other_run_against_a_sorted_by_effect():
    table = versus.versus_table(three_runs(), A, threshold=0.05)
    assert list(dict.fromkeys(table["run_b"])) == [B, C]
    of_b = table[table["run_b"] == B]
    assert of_b["case"].iloc[0] == "where · 1000x1000"  # 2x: the largest change of B first
    effects = of_b["speedup"].astype(float).map(math.log).abs()
    assert effects.is_monotonic_decreasing
    by_case = table.set_index(["run_b", "case"])["verdict"]
    assert by_case[(B, "where · 1000x1000")] == "faster"
    assert by_case[(B, "maximum · 1000x1000")] == "not resolved"  # 1.7%, CI across 5%
    assert by_case[(C, "nn_relu · 1000x1000")] == "slower"
    assert (C, "maximum · 1000") not in by_case.index  # C has no maximum: no row
    # a larger threshold resolves less
    wide = versus.versus_table(three_runs(), A, threshold=0.95).set_index(["run_b", "case"])
    assert wide.loc[(C, "nn_relu · 1000x1000"), "verdict"] == "not resolved"


def test_b_becomes_a_and_the_speedup_inverts():
    cases = three_runs()
    ab = versus.versus_table(cases, A).set_index(["run_b", "case"])
    ba = versus.versus_table(cases, B).set_index(["run_b", "case"])
    assert ba.loc[(A, "where · 1000"), "speedup"] == pytest.approx(
        1 / ab.loc[(B, "where · 1000"), "speedup"])


def test_csv_carries_unrounded_numbers_and_both_runs():
    table = versus.versus_table(three_runs(), A)
    rows = list(csv.DictReader(io.StringIO(versus.versus_csv(table, A))))
    assert len(rows) == len(table) and {r["run_a"] for r in rows} == {A}
    assert float(rows[0]["speedup"]) == pytest.approx(table["speedup"].iloc[0])


def test_chart_has_whiskers_the_threshold_band_and_a_row_per_case():
    table = versus.versus_table(three_runs(), A, threshold=0.1)
    fig = as_json(versus.versus_chart(table, {A: "first"}, A, threshold=0.1))
    assert fig["layout"]["xaxis"]["type"] == "log"
    band = fig["layout"]["shapes"][0]
    assert (band["x0"], band["x1"]) == pytest.approx((1 / 1.1, 1 / 0.9))
    assert [t["name"] for t in fig["data"]] == [f"B = {B}", f"B = {C}"]
    first = fig["data"][0]
    assert len(first["error_x"]["array"]) == len(first["x"]) == (table["run_b"] == B).sum()
    assert "Speedup over first" in fig["layout"]["title"]["text"]
    # the page's encoding: the variant's colour, open where not resolved
    rows = table[table["run_b"] == B]
    colours = variant_colours(list(dict.fromkeys(table["variant"])))
    assert first["marker"]["color"] == [colours[v] for v in rows["variant"]]
    assert [s.endswith("-open") for s in first["marker"]["symbol"]] == \
        [v == "not resolved" for v in rows["verdict"]]
    assert versus.threshold_band(0.05) == pytest.approx((1 / 1.05, 1 / 0.95))


def test_nothing_to_match_gives_an_empty_table_and_an_annotated_chart():
    table = versus.versus_table(synthetic_cases(run_id=A), A)
    assert table.empty and list(table.columns) == versus.VERSUS_COLUMNS
    fig = as_json(versus.versus_chart(table, {}, A))
    assert fig["data"] == [] and "No cases matched" in fig["layout"]["annotations"][0]["text"]


def layer(spec: dict, mark: str, field: str) -> dict:
    """The spec's layer of this mark type whose x encodes ``field``."""
    return next(part for part in spec["layer"]
                if part["mark"]["type"] == mark and part["encoding"]["x"]["field"] == field)


def test_spec_has_a_row_per_case_whiskers_the_band_and_the_apps_palette():
    from profiling.presentation.charts import RUN_DASHES

    table = versus.versus_table(three_runs(), A, threshold=0.1)
    spec = versus.versus_spec(table, {A: "first", B: "second"}, A, threshold=0.1)
    json.dumps(spec, allow_nan=False)  # Vega reads JSON: no NaN anywhere
    assert spec["title"]["text"] == "Speedup over first per case (above 1 is faster)"
    rows = spec["data"]["values"]
    assert len(rows) == len(table)
    where_b = next(r for r in rows if r["B"] == "second" and r["case"] == "where · 1000x1000")
    assert where_b["verdict"] == "faster" and where_b["low"] < where_b["speedup"] < where_b["high"]
    band = layer(spec, "rect", "low")["data"]["values"][0]
    assert (band["low"], band["high"]) == pytest.approx((1 / 1.1, 1 / 0.9))
    assert layer(spec, "rule", "one")["data"]["values"] == [{"one": 1.0}]
    whiskers = layer(spec, "rule", "low")["encoding"]
    assert whiskers["x2"] == {"field": "high"}
    dashes = whiskers["strokeDash"]["scale"]
    assert dashes["domain"] == ["second", C]
    assert dashes["range"] == [versus.VEGA_DASHES[d] for d in RUN_DASHES[:2]]
    points = layer(spec, "point", "speedup")["encoding"]
    assert points["y"]["sort"] == list(dict.fromkeys(table["case"]))  # largest change on top
    colours = points["stroke"]["scale"]
    assert colours["range"] == [variant_colours(colours["domain"])[v] for v in colours["domain"]]
    assert len(set(colours["range"])) == len(colours["domain"]) == 3
    assert points["fill"]["scale"] == colours  # open (not resolved) or filled, same colour
    assert "not resolved" in points["fillOpacity"]["condition"]["test"]
    assert {t["field"] for t in points["tooltip"]} >= {"case", "speedup [95% CI]", "verdict"}
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"


def test_spec_of_nothing_matched_says_so():
    spec = versus.versus_spec(versus.versus_table(synthetic_cases(run_id=A), A), {}, A)
    assert spec["data"]["values"] == [{"text": "No cases matched between these runs"}]
