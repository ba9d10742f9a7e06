"""One stored pair of runs, one speedup on every surface: the CLI's `show` and `compare` (table
and --json), the Run page, the Compare page (its results table and its B-vs-A view) and the
HTML report all print the same number, in the same direction (t_baseline / t_variant, above 1
is faster); the heat table colours only what the CI resolves."""

from __future__ import annotations

import json
import re

import pytest
from helpers import figures, open_page, store_timed_run

from app.run_job import Job
from profiling.cli.main import main
from profiling.presentation.report import render_html
from profiling.presentation.units import format_speedup
from profiling.storage.store import Store

# run A: where is 0.8 [0.7, 0.9] of nn_relu's time (paired, resolved: 1.25× [1.11, 1.43]),
# maximum 0.97 [0.90, 1.04] (its CI overlaps nn_relu's: not resolved).
# run B: where 2x faster than in A, the rest alike.
PAIRED = {"where": (0.8, 0.7, 0.9), "maximum": (0.97, 0.90, 1.04)}
TIMES_A = {"nn_relu": 100e-6, "where": 80e-6, "maximum": 97e-6}
TIMES_B = {"nn_relu": 100e-6, "where": 40e-6, "maximum": 97e-6}


@pytest.fixture
def pair(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path))
    monkeypatch.delenv("RELU_LAB_STORE", raising=False)
    with Store(tmp_path) as store:
        a = store_timed_run(store, TIMES_A, "first", PAIRED)
        b = store_timed_run(store, TIMES_B, "second", PAIRED)
    return tmp_path, a, b


def cli(capsys, *argv: str) -> str:
    assert main(list(argv)) in (0, 1)
    return capsys.readouterr().out


# The numbers every surface must show: within run A (paired) and B against A (unpaired).
WHERE_IN_A = format_speedup(1 / 0.8, 1 / 0.9, 1 / 0.7)  # 1.25× [1.11, 1.43]
WHERE_B_VS_A = format_speedup(2.0, 80 * 0.98 / (40 * 1.02), 80 * 1.02 / (40 * 0.98))


def test_every_surface_shows_the_same_speedup(pair, capsys):
    data_dir, a, b = pair
    # CLI show: the table and --json
    assert WHERE_IN_A in cli(capsys, "show", a)
    shown = json.loads(cli(capsys, "show", a, "--json"))
    where = next(c for c in shown["cases"] if c["variant"] == "where")
    assert (where["speedup"], where["speedup_ci95_low"], where["speedup_ci95_high"]) == \
        pytest.approx((1.25, 1 / 0.9, 1 / 0.7))
    # CLI compare: the table and --json
    assert WHERE_B_VS_A in cli(capsys, "compare", a, b)
    compared = json.loads(cli(capsys, "compare", a, b, "--json"))
    where = next(c for c in compared["cases"] if c["label"] == "where")
    assert format_speedup(where["speedup"], where["speedup_ci95_low"],
                          where["speedup_ci95_high"]) == WHERE_B_VS_A

    # the Run page's table, as it is when run A has just finished
    cells = heat_cells(run_page_after(data_dir, a))
    assert cells["where"].endswith("· 1.25×") and "80.0 µs" in cells["where"]

    # the Compare page: the results table of run A, then B against A
    compare = open_page("compare", {"runs": a, "view": "Table"})
    assert heat_cells(compare)["where"] == cells["where"]
    compare = open_page("compare", {"runs": f"{a},{b}"})
    assert compare.session_state["view"] == "B vs A"  # the default for two runs
    versus = next(d.value for d in compare.dataframe if "verdict" in d.value.columns)
    row = versus.set_index("case").loc["where · 1000000"]
    assert row["speedup B vs A [95% CI]"] == WHERE_B_VS_A and row["verdict"] == "faster"
    chart = compare.get("iframe")[0].proto.srcdoc  # the page's first chart, B vs A
    assert "Speedup over first per case" in chart
    point = re.search(r'<g class="case" data-case="where · 1000000"[^>]*'
                      r'data-verdict="(\w+)"><title>([^<]*)</title>', chart)
    assert point and point.group(1) == "faster" and WHERE_B_VS_A in point.group(2)

    # the report: the same cell and the same B-vs-A row
    with Store(data_dir) as store:
        document = render_html(store, [a, b])
        alone = render_html(store, [a])
    assert cells["where"] in alone
    assert re.search(r"<td class=\"name\">where · 1000000</td>.*?"
                     + re.escape(WHERE_B_VS_A), document)


def run_page_after(data_dir, run_id: str):
    """The Run page as it is when ``run_id`` (3 cases) has just finished."""
    with Store(data_dir) as store:
        spec = json.loads(store.run(run_id)["spec_json"])
    at = open_page()
    at.session_state["job"] = Job(total=3, spec=spec, result=run_id, done=3, finished=True,
                                  shown=True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def heat_table(at):
    """The page's heat table: the dataframe with a column per shape."""
    return next(d for d in at.dataframe if "1000000" in d.value.columns)


def heat_cells(at) -> dict[str, str]:
    """series -> the text of its cell in the page's heat table (one shape here)."""
    values = heat_table(at).value
    return {str(series): str(values.iloc[i, 0]) for i, series in enumerate(values.index)}


def test_overlapping_cis_are_coloured_neutral_on_the_run_page(pair):
    """maximum's paired ratio 0.97 [0.90, 1.04] includes 1: no colour; where's excludes 1 and
    5%: green; the baseline grey; the legend says what each colour means."""
    data_dir, a, _ = pair
    at = run_page_after(data_dir, a)
    element = heat_table(at)
    styles = styled_cells(element.proto.arrow_data.styler.styles, element.value)
    assert styles["maximum"] == ""
    assert "#b7e4c7" in styles["where"]
    assert "#e8e8e8" in styles["nn_relu"]
    legend = " ".join(c.value for c in at.caption)
    assert "not resolved" in legend and "faster" in legend and "slower" in legend


def styled_cells(css: str, values) -> dict[str, str]:
    """series -> the CSS Streamlit's Styler wrote for its (only) cell."""
    out = {}
    for i, series in enumerate(values.index):
        found = re.search(rf"#T_\w+row{i}_col0\s*{{([^}}]*)}}", css)
        out[str(series)] = found.group(1).strip() if found else ""
    return out


def test_a_scenario_run_is_no_point_on_the_size_axes(pair):
    data_dir, a, _ = pair
    with Store(data_dir) as store:
        scenario = store.create_run({"kind": "scenario", "scenario": "block"}, label="block",
                                    n_cases=1)
        store.add_case({
            "run_id": scenario, "case_id": f"{scenario}-0000", "idx": 0, "variant": "nn_relu",
            "variant_params": "{}", "label": "nn_relu", "shape": "32x32x64",
            "numel": 65536, "dtype": "float32", "device": "CPU:0", "threads": 2,
            "allocator": "bfc", "mode": "function", "pass": "train_step", "status": "ok",
            "reason": "", "median_s": 5e-3, "ci95_low_s": 4.9e-3, "ci95_high_s": 5.1e-3,
            "n_samples": 9, "kind": "scenario"}, samples=[5e-3] * 9)
        store.finish_run(scenario, "complete")
    at = open_page("compare", {"runs": f"{a},{scenario}", "view": "Latency"})
    drawn = {x for t in figures(at)["chart_latency"]["data"] for x in t["x"]}
    assert drawn == {1_000_000}  # run A's cases; the scenario's 65536 "elements" are not there
    at = open_page("compare", {"runs": f"{a},{scenario}", "view": "Speedup"})
    drawn = {x for t in figures(at)["chart_speedup"]["data"] for x in t["x"] or []}
    assert 65536 not in drawn


def versus_rows(at) -> dict[str, tuple[str, str]]:
    """case -> (speedup text, verdict) of the Compare page's B-vs-A table."""
    table = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    return {row["case"]: (row["speedup B vs A [95% CI]"], row["verdict"])
            for row in table.to_dict("records")}


def test_b_vs_a_follows_the_base_run_the_threshold_and_the_link(pair):
    _, a, b = pair
    at = open_page("compare", {"runs": f"{a},{b}"})
    assert at.selectbox(key="compare_base_run").value == a  # A: the first selected
    assert versus_rows(at)["where · 1000000"] == (WHERE_B_VS_A, "faster")
    assert versus_rows(at)["maximum · 1000000"][1] == "not resolved"
    assert "Download B vs A (CSV)" in {b.proto.label for b in at.get("download_button")}
    # B becomes A: where is now 2x slower; a threshold of 95% leaves it unresolved (its ratio CI 1.92..2.08 reaches below 1.95)
    at.selectbox(key="compare_base_run").set_value(b).run()
    assert versus_rows(at)["where · 1000000"] == (
        format_speedup(0.5, 40 * 0.98 / (80 * 1.02), 40 * 1.02 / (80 * 0.98)), "slower")
    assert at.query_params["base"] == b
    at.number_input(key="compare_threshold").set_value(95.0).run()
    assert at.query_params["threshold"] == "95"
    assert versus_rows(at)["where · 1000000"][1] == "not resolved"
    # the link reproduces the view
    again = open_page("compare", {"runs": f"{a},{b}", "base": b, "threshold": "95"})
    assert versus_rows(again) == versus_rows(at)
    # a bad threshold in a link falls back to 5%, without a traceback
    bad = open_page("compare", {"runs": f"{a},{b}", "threshold": "lots"})
    assert bad.number_input(key="compare_threshold").value == 5.0
