"""HTML report from a real store filled with synthetic cases: self-contained, escaped, filtered."""

from __future__ import annotations

import re

import pytest
from helpers import fill, synthetic_cases

from profiling.presentation.report import render_html
from profiling.storage.store import Store

EVIL = "<script>alert('x')</script>"


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path) as store:
        yield store


def chart_count(document: str) -> int:
    return len(re.findall(r'class="plotly-graph-div"', document))


def test_report_is_self_contained_with_every_chart(store):
    run_id = fill(store, synthetic_cases(modes=("eager", "function")))
    document = render_html(store, [run_id], baseline="nn_relu")
    assert document.startswith("<!DOCTYPE html>")
    # plotly.js inlined exactly once, nothing fetched from a CDN.
    assert document.count("* plotly.js v") == 1
    assert not re.search(r"<(script|link)[^>]+(src|href)=", document)
    assert chart_count(document) == 7  # latency, bandwidth, speedup, roofline, utilization,
    # faults, breakdown
    assert "Speedup vs nn_relu" in document
    assert "roof peak 20 GB" in document and "Roofline" in document
    # Results table: maximum (3x slower, CI far beyond 5%) coloured slower, with the legend.
    assert "#f9c6a8" in document and "not resolved: the CI touches" in document
    assert "3.00 ms · 0.334×" in document  # the speedup beside the time
    assert "B against A" not in document  # one run: nothing to set against


def test_report_of_two_runs_has_the_b_vs_a_table_and_chart(store):
    first = fill(store, synthetic_cases(run_id="a"), label="first")
    second = fill(store, synthetic_cases(
        variants={"nn_relu": 1.0, "where": 0.5, "maximum": 3.05}, run_id="b"), label="second")
    document = render_html(store, [first, second], threshold=0.05)
    assert "B against A (A = first)" in document
    versus = document[document.index('<div class="versus">'):]
    versus = versus[:versus.index("</div>")]
    rows = re.findall(r"<tr>(.*?)</tr>", versus)
    cells = [re.findall(r'<td class="name">(.*?)</td>', row) for row in rows]
    cells = [c for c in cells if c]  # the header row has none
    # sorted by effect: where (2x faster) first; maximum's 1.7% is not resolved
    assert cells[0][:2] == ["second", "where · 1000x1000"]
    assert cells[0][4:] == ["2.10× [2.02, 2.18]", "faster"]
    assert ["second", "maximum · 1000x1000", "3.00 ms", "3.05 ms", "0.984× [0.945, 1.02]",
            "not resolved"] in cells
    assert chart_count(document) == 7  # the seven Plotly charts, and the B-vs-A chart in SVG:
    chart = document[document.index('<svg xmlns="http://www.w3.org/2000/svg" class="versus-chart"'):]
    chart = chart[:chart.index("</svg>")]
    assert "Speedup over first per case" in chart
    assert f'data-case="where · 1000x1000" data-run="{second}" data-verdict="faster"' in chart


def test_report_escapes_user_supplied_text(store):
    cases = synthetic_cases(variants={"nn_relu": 1.0, "where": 2.0})
    cases.loc[cases["variant"] == "where", "label"] = EVIL
    run_id = fill(store, cases, label=EVIL)
    document = render_html(store, [run_id], baseline="nn_relu")
    assert EVIL not in document
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in document
    assert "test &lt;cpu&gt;" in document


def test_report_escapes_a_hostile_spec_and_environment(store):
    """Text from a bundle lands in the template's every kind of slot: a scenario's name, its
    tables, an error message, an environment key and value, a fusion reason."""
    run_id = fill(store, synthetic_cases(variants={"nn_relu": 1.0}), label="plain")
    hostile = store.create_run({"kind": "scenario", "scenario": EVIL, "results": {
        "summary": [{"label": EVIL, "mode": "x", "status": "ok", "median_s": 0.001}]}},
        label=EVIL)
    store.finish_run(hostile, "complete")
    broken = store.create_run({"kind": "scenario", "scenario": "qat", "results": {
        "summary": {EVIL: "not a table"}}}, label="broken")
    store.finish_run(broken, "complete")
    document = render_html(store, [run_id, hostile, broken], baseline=EVIL)
    assert "<script>alert" not in document
    assert f"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; · run {hostile}" in document
    assert document.count("&lt;script&gt;alert") >= 4  # title, baseline, run label, summary
    # the one script of the page is plotly.js, inlined; the charts' own divs are not escaped
    assert document.count("<script") == 1 + chart_count(document)


def test_report_applies_filters(store):
    run_id = fill(store, synthetic_cases(modes=("eager", "function")))
    everything = render_html(store, [run_id])
    eager_only = render_html(store, [run_id], filters={"mode": ["eager"]})
    assert "nn_relu · function" in everything
    assert "nn_relu · function" not in eager_only
    assert "mode: eager" in eager_only


def test_report_of_two_runs_tells_them_apart(store):
    first = fill(store, synthetic_cases(run_id="a"), label="first")
    second = fill(store, synthetic_cases(run_id="b"), label="second")
    document = render_html(store, [first, second])
    for name in ("first", "second"):
        for variant in ("nn_relu", "where", "maximum"):  # every case of both runs, as a row
            assert f'<td class="name">{variant} · run {name}</td>' in document


def test_report_of_two_unlabelled_runs_of_one_day(store):
    first = fill(store, synthetic_cases(run_id="a"), label="")
    second = fill(store, synthetic_cases(run_id="b"), label="")
    assert first[:8] == second[:8]  # the same day: the date alone cannot tell them apart
    document = render_html(store, [first, second])
    for run_id in (first, second):
        assert f"nn_relu · run {run_id[9:]}" in document


def test_report_carries_the_semantics_matrix_when_given(store):
    from relu_impls.semantics import semantics_table

    run_id = fill(store, synthetic_cases(variants={"nn_relu": 1.0, "where": 2.0}))
    without = render_html(store, [run_id])
    with_semantics = render_html(store, [run_id], semantics=semantics_table(["nn_relu", "where"]))
    assert chart_count(with_semantics) == chart_count(without) + 1
    assert "Semantics (NaN" in with_semantics and "Semantics (NaN" not in without
