"""AppTest of the Run page: a tiny real profile through the widgets, bad input, cancel."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import assert_short_numbers, figures, open_page, open_tab, texts, wait_finished
from streamlit.testing.v1 import AppTest

RUN_LIMIT_S = 180


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path))
    return tmp_path


def choose_tiny(at: AppTest, shapes: list[str] = ("1000",), custom: str = "") -> None:
    at.multiselect(key="variants").set_value(["nn_relu", "where"])
    at.multiselect(key="shape_presets").set_value(list(shapes))
    at.text_input(key="shape_custom").set_value(custom)
    at.multiselect(key="modes").set_value(["eager"])
    at.multiselect(key="threads").set_value([1])
    at.number_input(key="repeats").set_value(5)
    at.number_input(key="min_time").set_value(0.001)
    at.run()


def wait_for_run(at: AppTest) -> None:
    wait_finished(at, RUN_LIMIT_S, job="job")


def test_tiny_profile_runs_with_live_progress_and_shows_results(data_dir):
    at = open_page()
    choose_tiny(at, custom="1e4")
    assert "4 cases" in at.caption[-1].value
    at.button(key="start").click().run()
    assert not at.exception
    job = at.session_state["job"]
    if not job.finished:  # the progress panel is up while it runs
        assert at.get("status") or at.get("progress")
    wait_for_run(at)
    assert not at.exception and not at.error, texts(at.error)
    assert "complete" in at.success[0].value
    assert_short_numbers(at)
    # Every case links to its own trace on the Traces page.
    links = next(d for d in at.dataframe if "trace" in d.value.columns).value
    assert len(links) == 4 and links["trace"].notna().all()
    link = parse_qs(urlsplit(links["trace"].iloc[-1]).query)
    assert urlsplit(links["trace"].iloc[-1]).path == "./traces"
    assert link["run"] == [job.run_id]
    from app.resources import store  # the page's own handle on the same data dir

    by_case = {c: store().trace_path(c) for c in store().cases(job.run_id)["case_id"]}
    assert store().trace_paths([job.run_id]) == by_case and None not in by_case.values()
    latency = figures(at)["run_latency"]
    assert {t["name"] for t in latency["data"] if t.get("mode") == "lines+markers"} == {
        "nn_relu", "where"}
    assert latency["data"][1]["x"] == [1000, 10000]
    # The run is then on the Compare page, linked by its id.
    at.switch_page("views/compare.py")
    at.query_params["runs"] = job.run_id
    at.run()
    assert not at.exception
    assert at.multiselect(key="compare_runs").value == [job.run_id]
    assert "chart_speedup" in figures(open_tab(at, "Speedup"))
    # Its traces open on the Traces page (TensorFlow .xplane.pb through xprof).
    at.switch_page("views/traces.py").run()
    at.radio(key="trace_source").set_value("A trace stored by a run").run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.query_params["run"] == job.run_id
    timeline = figures(at)["chart_timeline"]
    assert sum(len(t["x"]) for t in timeline["data"]) > 0
    assert_short_numbers(at)
    # The linked case opens with its trace, named by run and case.
    linked = open_page("traces", {"run": link["run"][0], "case": link["case"][0]})
    assert linked.selectbox(key="trace_case").value == link["case"][0]
    row = links.iloc[-1]
    caption = next(c.value for c in linked.caption if c.value.startswith("Trace of run"))
    assert job.run_id in caption and row["label"] in caption and row["shape"] in caption


@pytest.mark.parametrize("custom, field", [("12x-3", "shapes"), ("lots", "sizes")])
def test_invalid_choices_are_explained_and_block_start(data_dir, custom, field):
    at = open_page()
    choose_tiny(at, custom=custom)
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith(f"invalid {field}")
    assert at.button(key="start").disabled


def test_no_variant_is_explained(data_dir):
    at = open_page()
    choose_tiny(at)
    at.multiselect(key="variants").set_value([]).run()
    assert texts(at.error) and "variants" in texts(at.error)[0]
    assert at.button(key="start").disabled


def test_cancel_stops_the_run_and_keeps_it_interrupted(data_dir):
    at = open_page()
    choose_tiny(at, shapes=["1000", "100000"], custom="2000,3000,4000,5000")
    at.number_input(key="repeats").set_value(40).run()
    at.number_input(key="min_time").set_value(0.05).run()
    at.button(key="start").click().run()
    at.button(key="cancel").click().run()
    wait_for_run(at)
    job = at.session_state["job"]
    assert job.done < job.total
    assert "interrupted" in at.warning[0].value


def test_shape_text_and_variant_params_become_the_spec():
    from app.run_form import chosen_shapes, variant_entry

    assert chosen_shapes(["1000"], "1e6, 1000x1000, 1000") == [(1000,), (1000000,), (1000, 1000)]
    assert variant_entry("leaky", {"alpha": 0.01}, {"alpha": 0.01}) == "leaky"
    assert variant_entry("leaky", {"alpha": 0.2}, {"alpha": 0.01}) == {
        "id": "leaky", "params": {"alpha": 0.2}}


def test_a_variant_parameter_out_of_range_is_explained(data_dir):
    at = open_page()
    choose_tiny(at)
    at.multiselect(key="variants").set_value(["clipped"]).run()
    at.number_input(key="param_clipped_clip").set_value(0.0).run()
    errors = texts(at.error)
    assert len(errors) == 1 and "clip" in errors[0], errors
    assert at.button(key="start").disabled
