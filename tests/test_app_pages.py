"""AppTest of the Variants, Traces and Compare pages (the Run page: test_app_run.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import (
    decode,
    figures,
    fill,
    open_import,
    open_page,
    open_tab,
    synthetic_cases,
    texts,
)

from profiling.storage.store import Store


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path))
    return tmp_path


def test_main_routes_to_the_run_page(data_dir):
    at = open_page()
    assert at.title[0].value == "Run a profile"
    assert "Variants" in [m.label for m in at.multiselect]


def test_variants_page_shows_registry_and_semantics_matrix(data_dir):
    at = open_page("variants")
    assert not at.error
    table = at.dataframe[0].value
    assert {"nn_relu", "where", "leaky"} <= set(table["id"])
    heat = figures(at)["chart_semantics"]["data"][0]
    assert heat["type"] == "heatmap"
    assert any(label.startswith("nn_relu") for label in heat["y"])
    at.selectbox(key="semantics_dtype").set_value("float64").run()
    assert "nn_relu (float64)" in figures(at)["chart_semantics"]["data"][0]["y"]
    assert at.query_params["dtype"] == "float64"
    shared = open_page("variants", {"dtype": "float16"})
    assert shared.selectbox(key="semantics_dtype").value == "float16"


def test_variants_page_hides_test_variants_loaded_by_the_hook(data_dir, faulty_variants):
    from app import resources
    from profiling.spec import variant_registry

    assert set(faulty_variants) <= set(variant_registry())  # loaded: real Variants
    resources.variants.clear()  # cached per process: recompute with the hook set
    try:
        at = open_page("variants")
        assert not at.error
        ids = set(at.dataframe[0].value["id"])
        assert "nn_relu" in ids and not any(i.startswith("_") for i in ids)
        at.switch_page("views/run.py").run()
        options = at.multiselect[0].options
        assert any(o.startswith("nn_relu") for o in options)
        assert not any(o.startswith("_") for o in options)
    finally:
        resources.variants.clear()


def test_traces_page_reads_an_uploaded_pytorch_trace(data_dir, pytorch_trace):
    trace = pytorch_trace
    at = open_page("traces")
    at.get("file_uploader")[0].set_value((trace.name, trace.read_bytes(), "application/json"))
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    charts = figures(at)
    timeline = charts["chart_timeline"]
    assert timeline["data"] and all(t["type"] == "bar" for t in timeline["data"])
    assert any("aten::" in t["name"] for t in timeline["data"])
    assert charts["chart_ops"]["data"][0]["orientation"] == "h"
    frames = {tuple(d.value.columns[:2]): d.value for d in at.dataframe}
    assert "aten::mkldnn_convolution" in set(frames[("name", "occurrences")]["name"])
    audit = frames[("scope", "op")]
    assert list(audit.loc[audit["op"] == "aten::relu", "fused"]) == ["separate"]
    breakdown = frames[("kind", "wall µs")].set_index("kind")
    assert breakdown.loc["compute", "wall µs"] > breakdown.loc["other", "wall µs"]
    assert "n/a" in [m.value for m in at.metric]
    assert "n/a: no communication in this trace" in [c.value for c in at.caption]
    # Fewer events drawn when capped.
    drawn = sum(len(t["x"]) for t in timeline["data"])
    at.number_input(key="trace_cap").set_value(100).run()
    assert sum(len(t["x"]) for t in figures(at)["chart_timeline"]["data"]) == min(100, drawn)


@pytest.mark.parametrize("name, content, reason", [
    ("notes.json", b"{not json", "JSON"),
    ("empty.json", b"", "empty"),
    ("random.xplane.pb", b"\x00\x01garbage", ""),
    ("trace.json.gz", b"\x1f\x8b\x08\x00corrupt", ""),
])
def test_traces_page_explains_a_bad_upload_in_one_line(data_dir, name, content, reason):
    at = open_page("traces")
    at.get("file_uploader")[0].set_value((name, content, "application/octet-stream"))
    at.run()
    assert not at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith(f"Could not read {name}")
    assert reason.lower() in errors[0].lower()
    assert "\n" not in errors[0] and "Traceback" not in errors[0]
    assert not at.get("plotly_chart")


def test_compare_page_without_runs_points_to_run(data_dir):
    at = open_page("compare")
    assert "No runs yet" in texts(at.info)[0]


TAB_CHARTS = {"Latency": "chart_latency", "Bandwidth": "chart_bandwidth",
              "Speedup": "chart_speedup", "Roofline": "chart_roofline",
              "Utilization": "chart_utilization", "Page faults": "chart_faults",
              "Breakdown": "chart_breakdown", "Semantics": "chart_semantics"}


def test_compare_page_draws_every_chart_and_writes_the_url(data_dir):
    with Store(data_dir) as store:
        run_id = fill(store, synthetic_cases(modes=("eager", "function")))
    at = open_page("compare")
    assert at.multiselect(key="compare_runs").value == [run_id]
    charts = figures(at)
    assert set(charts) == {"chart_latency"}  # only the open tab is drawn
    assert charts["chart_latency"]["layout"]["xaxis"]["type"] == "log"
    assert charts["chart_latency"]["layout"]["yaxis"]["type"] == "log"
    assert "view" not in at.query_params  # the first tab: a clean URL (a link opens another:
    # test_compare_page_reproduces_a_shared_link; a click writes it: the browser test)
    for tab, chart in TAB_CHARTS.items():  # each tab draws its own chart, and only it
        assert set(figures(open_tab(at, tab))) == {chart}, tab
    assert any(t["name"].startswith("roof peak")
               for t in figures(open_tab(at, "Bandwidth"))["chart_bandwidth"]["data"])
    assert at.selectbox(key="compare_baseline").value == "nn_relu"
    assert at.query_params["runs"] == run_id and at.query_params["baseline"] == "nn_relu"
    tables = [d.value for d in open_tab(at, "Table").dataframe]
    assert any(list(t.columns) == ["1000", "100x1000", "1000x1000"] for t in tables)
    assert not at.get("plotly_chart")
    open_tab(at, "Latency")
    # A filter narrows the charts and lands in the URL.
    at.multiselect(key="filter_mode").set_value(["function"]).run()
    assert at.query_params["mode"] == "function"
    names = {t["name"] for t in figures(at)["chart_latency"]["data"]}
    assert not any("eager" in n for n in names)
    assert {b.proto.label for b in at.get("download_button")} >= {
        "Download HTML report", "Download CSV"}


def test_compare_case_table_links_each_stored_trace_to_xprof_and_perfetto(data_dir):
    from helpers import make_run

    with Store(data_dir) as store:
        run_id = make_run(store, "traced", b"not read by the Compare page")
    at = open_page("compare", {"runs": run_id, "view": "Table"})  # only the open tab is drawn
    assert not at.exception and not at.error, texts(at.error)
    table = next(d.value for d in at.dataframe if "xprof" in d.value.columns)
    assert list(table.columns[:3]) == ["trace", "xprof", "perfetto"]
    traced = f"./traces?run={run_id}&case={run_id}-0000"
    assert table["trace"].iloc[0] == traced and table["xprof"].iloc[0] == traced + "&xprof=1"
    assert table["perfetto"].iloc[0] == traced + "&perfetto=1"
    assert table[["trace", "xprof", "perfetto"]].iloc[1].isna().all()  # no trace, no link


def test_compare_page_reproduces_a_shared_link(data_dir):
    with Store(data_dir) as store:
        first = fill(store, synthetic_cases(run_id="a"), label="first")
        second = fill(store, synthetic_cases(run_id="b"), label="second")
    at = open_page("compare", {"runs": f"{first},{second},missing", "baseline": "where",
                               "view": "Speedup"})
    assert at.multiselect(key="compare_runs").value == [first, second]
    assert at.selectbox(key="compare_baseline").value == "where"
    assert at.session_state["view"] == "Speedup"  # the link opens its tab
    speedup = figures(at)["chart_speedup"]
    assert "where" in speedup["layout"]["title"]["text"]
    assert at.query_params["runs"] == f"{first},{second}"


def test_compare_chart_draws_the_b_runs_picked_and_the_link_keeps_them(data_dir):
    from profiling.presentation.versus_svg import MAX_RUNS

    with Store(data_dir) as store:
        ids = [fill(store, synthetic_cases(run_id=f"r{i}"), label=f"run {i}")
               for i in range(MAX_RUNS + 3)]
    at = open_page("compare", {"runs": ",".join(ids)})

    def drawn_runs(at) -> list[str]:
        chart = at.get("iframe")[0].proto.srcdoc
        return list(dict.fromkeys(re.findall(r'<g class="case" data-case="[^"]*" '
                                             r'data-run="([^"]*)"', chart)))

    picker = at.multiselect(key="compare_chart_runs")
    assert sorted(picker.options) == sorted(f"run {i}" for i in range(1, len(ids)))
    first = list(picker.value)  # the first B runs, in the table's order
    assert len(first) == MAX_RUNS and drawn_runs(at) == first
    assert "chart" not in at.query_params
    left_out = sorted(set(ids[1:]) - set(first))[0]
    at.multiselect(key="compare_chart_runs").set_value([left_out, first[1]]).run()
    assert set(drawn_runs(at)) == {left_out, first[1]}
    assert at.query_params["chart"] == f"{left_out},{first[1]}"
    shared = open_page("compare", {"runs": ",".join(ids), "chart": at.query_params["chart"]})
    assert drawn_runs(shared) == drawn_runs(at)
    # the downloaded report draws the page's choice
    from profiling.presentation.report import render_html

    with Store(data_dir) as store:
        document = render_html(store, ids, chart_runs=[left_out, first[1]])
    marks = re.findall(r'<g class="case" data-case="[^"]*" data-run="([^"]*)"', document)
    assert set(marks) == {left_out, first[1]}
    # the table still lists every B run, at full height, paged beyond PAGE_ROWS rows
    from app.tables import PAGE_ROWS

    grid = next(d for d in at.dataframe if "verdict" in d.value.columns)
    matched = len(ids[1:]) * len(synthetic_cases(run_id="x"))
    assert len(grid.value) == min(matched, PAGE_ROWS)
    assert matched > PAGE_ROWS  # so the table is paged
    pages = -(-matched // PAGE_ROWS)
    at.number_input(key="versus_table_page").set_value(pages).run()
    last = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert len(last) == matched - (pages - 1) * PAGE_ROWS
    # two runs: one B, no picker
    two = open_page("compare", {"runs": ",".join(ids[:2])})
    assert not [m for m in two.multiselect if m.key == "compare_chart_runs"]


def test_compare_page_imports_a_bundle_and_refuses_a_bad_one(data_dir, tmp_path_factory):
    from profiling.storage.bundle import export_bundle

    with Store(tmp_path_factory.mktemp("elsewhere")) as other:
        run_id = fill(other, synthetic_cases(), label="from a colleague")
        bundle = json.dumps(export_bundle(other, [run_id]), default=str).encode()
    at = open_page("compare")
    assert not at.get("file_uploader")  # a closed expander sends nothing
    at = open_import(at)
    uploader = at.get("file_uploader")[0]
    uploader.set_value(("broken.json", b'{"format": "something else"}', "application/json"))
    at.run()
    assert not at.exception
    assert texts(at.error)[0].startswith("Could not import broken.json")
    with Store(data_dir) as store:
        assert store.list_runs().empty  # nothing partial stored
    uploader = at.get("file_uploader")[0]
    uploader.set_value(("bundle.json", bundle, "application/json"))
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.multiselect(key="compare_runs").value == [run_id]
    assert "chart_latency" in figures(at)


def test_trace_over_the_size_limit_is_refused(data_dir, monkeypatch):
    import gzip

    monkeypatch.setenv("RELU_LAB_MAX_TRACE_BYTES", "1000")
    bomb = gzip.compress(b'{"traceEvents": [' + b" " * 100_000 + b"]}")
    at = open_page("traces")
    at.get("file_uploader")[0].set_value(("big.json.gz", bomb, "application/gzip"))
    at.run()
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Could not read big.json.gz"), errors
    assert not at.get("plotly_chart")


def test_a_broken_data_dir_gives_one_line_not_a_traceback(tmp_path, monkeypatch):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    monkeypatch.setenv("RELU_LAB_DATA", str(not_a_dir))
    at = open_page("compare")
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("The Compare page failed:"), errors
    assert "\n" not in errors[0]


def test_a_large_trace_is_drawn_capped(data_dir):
    events = [{"ph": "X", "name": f"op{i % 40}", "pid": 1, "tid": i % 4, "ts": i * 2.0,
               "dur": 1.5} for i in range(60_000)]
    data = json.dumps({"traceEvents": events}).encode()
    at = open_page("traces")
    at.get("file_uploader")[0].set_value(("large.json", data, "application/json"))
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    timeline = next(e for e in at.get("plotly_chart") if e.proto.id.endswith("chart_timeline"))
    drawn = sum(len(t["x"]) for t in decode(json.loads(timeline.proto.spec))["data"])
    assert drawn == 3000
    assert len(timeline.proto.spec) < len(data) / 10


@pytest.mark.parametrize("content", [b'"/etc/hostname"', b"[1, 2]"])
def test_compare_page_refuses_a_bundle_that_is_not_an_object(data_dir, content):
    at = open_import(open_page("compare"))
    at.get("file_uploader")[0].set_value(("odd.json", content, "application/json"))
    at.run()
    assert not at.exception
    assert texts(at.error) == [
        "Could not import odd.json: not a ReLU Lab bundle (the top level is not a JSON object)"]
