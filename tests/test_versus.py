"""B against A (profiling.presentation.versus) on synthetic runs: matching, verdicts by the
one rule, the order by effect, the CSV and the chart's whiskers and threshold band."""

from __future__ import annotations

import csv
import io
import math
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from helpers import synthetic_cases

from profiling.presentation import units, versus, versus_svg
from profiling.presentation.charts import variant_colours

SVG = "{http://www.w3.org/2000/svg}"
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


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def cases_of(root: ET.Element) -> list[ET.Element]:
    return root.findall(f"{SVG}g[@class='case']")


def centre(mark: ET.Element) -> float:
    """x of a circle or square marker's centre."""
    if mark.tag == f"{SVG}circle":
        return float(mark.get("cx"))
    return float(mark.get("x")) + float(mark.get("width")) / 2


def test_chart_has_a_marker_per_row_its_whisker_the_band_and_the_apps_palette():
    from profiling.presentation.charts import RUN_DASHES

    table = versus.versus_table(three_runs(), A, threshold=0.1)
    svg = versus_svg.versus_svg(table, {A: "first", B: "second"}, A, threshold=0.1)
    root = parsed(svg)
    assert root.find(f"{SVG}title").text == "Speedup over first per case (above 1 is faster)"
    groups = cases_of(root)
    assert len(groups) == len(table)
    colours = variant_colours(list(dict.fromkeys(table["variant"])))
    band = root.find(f"{SVG}rect[@fill='#bcbcbc']")
    band_lo, band_hi = float(band.get("x")), float(band.get("x")) + float(band.get("width"))
    for g, row in zip(groups, table.itertuples(index=False), strict=True):
        assert (g.get("data-case"), g.get("data-run"), g.get("data-verdict")) == \
            (row.case, row.run_b, row.verdict)
        whisker, mark = g.find(f"{SVG}line"), g.find("*[@class='marker']")
        colour = colours[row.variant]
        assert whisker.get("stroke") == mark.get("stroke") == colour
        # open where not resolved, filled with the variant's colour where a change is called
        assert mark.get("fill") == ("white" if row.verdict == "not resolved" else colour)
        dash = versus_svg.DASHES[RUN_DASHES[[B, C].index(row.run_b)]]
        assert whisker.get("stroke-dasharray") == dash
        x1, x2 = float(whisker.get("x1")), float(whisker.get("x2"))
        assert x1 <= centre(mark) <= x2  # the CI's whisker spans its marker
        tip = g.find(f"{SVG}title").text
        assert units.format_speedup(row.speedup, row.speedup_ci95_low,
                                    row.speedup_ci95_high) in tip and row.verdict in tip
    where = next(g for g in groups if g.get("data-case") == "where · 1000x1000"
                 and g.get("data-run") == B)
    # 2x faster: right of the band; a slower case left of it
    assert centre(where.find("*[@class='marker']")) > band_hi
    slower = next(g for g in groups if g.get("data-verdict") == "slower")
    assert centre(slower.find("*[@class='marker']")) < band_lo
    # B runs differ by shape: B circles, C squares
    assert {g.find("*[@class='marker']").tag.split("}")[1] for g in groups
            if g.get("data-run") == C} == {"rect"}
    assert versus.threshold_band(0.05) == pytest.approx((1 / 1.05, 1 / 0.95))


def test_labels_are_escaped_and_a_case_row_sits_in_order_largest_change_on_top():
    cases = three_runs()
    cases.loc[cases["variant"] == "where", "label"] = "<script>alert(1)</script>"
    table = versus.versus_table(cases, A)
    svg = versus_svg.versus_svg(table, {A: "<b>A</b>"}, A)
    assert "<script>" not in svg and "<b>A</b>" not in svg
    root = parsed(svg)
    labels = [t.text for t in root.findall(f"{SVG}text[@text-anchor='end']")]
    assert labels == list(dict.fromkeys(table["case"]))


def test_nothing_to_match_gives_an_empty_table_and_a_chart_that_says_so():
    table = versus.versus_table(synthetic_cases(run_id=A), A)
    assert table.empty and list(table.columns) == versus.VERSUS_COLUMNS
    root = parsed(versus_svg.versus_svg(table, {}, A))
    assert cases_of(root) == []
    assert "No cases matched between these runs" in "".join(root.itertext())


def test_log_ticks_are_one_two_five_inside_the_range():
    assert versus_svg.log_ticks(0.4, 3.0) == [0.5, 1, 2]
    assert versus_svg.log_ticks(0.03, 0.6) == [0.05, 0.1, 0.2, 0.5]
    assert versus_svg.log_ticks(0.9, 1.1) == [0.9, 1, 1.1]
    assert versus_svg.log_ticks(1.3, 1.7) == [1.3, 1.7]


def many_runs(n: int) -> tuple[pd.DataFrame, list[str]]:
    """Run A and ``n`` B runs, each B its own speedup of `where`."""
    ids = [f"20260101-0001{i:02d}-{i:06d}" for i in range(n + 1)]
    return pd.concat([synthetic_cases(run_id=ids[0])] + [
        synthetic_cases(variants={"nn_relu": 1.0, "where": 1 + 0.1 * i}, run_id=run)
        for i, run in enumerate(ids[1:], start=1)]), ids


def test_chart_draws_at_most_one_b_run_per_marker_shape_and_says_so():
    cases, ids = many_runs(versus_svg.MAX_RUNS + 2)
    table = versus.versus_table(cases, ids[0])
    root = parsed(versus_svg.versus_svg(table, {}, ids[0]))
    drawn = list(dict.fromkeys(g.get("data-run") for g in cases_of(root)))
    assert drawn == ids[1:versus_svg.MAX_RUNS + 1]  # the first ones, in the runs' order
    text = "".join(root.itertext())
    assert f"{versus_svg.MAX_RUNS} of {versus_svg.MAX_RUNS + 2} B runs drawn" in text
    # chosen runs (in any order) are drawn in the runs' order; unknown ones are ignored
    chosen = [ids[-1], "no-such-run", ids[2]]
    assert versus_svg.drawn_runs(table, chosen) == [ids[2], ids[-1]]
    root = parsed(versus_svg.versus_svg(table, {}, ids[0], runs=chosen))
    assert {g.get("data-run") for g in cases_of(root)} == {ids[2], ids[-1]}
    # as many B runs as shapes: all drawn, no note
    few, few_ids = many_runs(versus_svg.MAX_RUNS)
    root = parsed(versus_svg.versus_svg(versus.versus_table(few, few_ids[0]), {}, few_ids[0]))
    assert len({g.get("data-run") for g in cases_of(root)}) == versus_svg.MAX_RUNS
    assert "B runs drawn" not in "".join(root.itertext())
    # a choice left from a larger selection does not hide runs when all fit
    few_table = versus.versus_table(few, few_ids[0])
    assert versus_svg.drawn_runs(few_table, [few_ids[1]]) == few_ids[1:]
