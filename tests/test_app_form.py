"""AppTest: the Run form remembers (other pages, links, "Run again"), results say which run they
belong to, noise warnings, and no table shows more than 4 significant digits."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from helpers import (
    MAIN,
    TIMEOUT_S,
    assert_short_numbers,
    fill,
    open_page,
    open_tab,
    synthetic_cases,
    texts,
)
from streamlit.testing.v1 import AppTest

from app.run_form import (
    build_spec,
    chosen_shapes,
    form_defaults,
    form_from_query,
    form_from_spec,
    form_to_query,
)
from app.run_job import Job
from profiling.spec import RunSpec
from profiling.storage.store import Store

OPTIONS = {"variants": ["nn_relu", "where", "maximum", "leaky"], "shape_presets": ["1000", "100000"],
           "dtypes": ["float32", "float16"], "devices": ["CPU:0"], "threads": [1, 2],
           "modes": ["eager", "function"], "passes": ["forward", "backward"]}


@pytest.fixture
def store(data_dir):
    with Store(data_dir) as store:
        yield store


def test_form_round_trips_through_a_link():
    defaults = form_defaults(OPTIONS["variants"], ["CPU:0"], 2)
    form = dict(defaults, variants=["nn_relu", "leaky"], label="my laptop baseline", repeats=3,
                shape_custom="1e6, 1000x1000", trace=False, threads=[], param_leaky_alpha=0.2)
    query = form_to_query(form, defaults, {("leaky", "alpha"): 0.01})
    assert query["variants"] == "nn_relu,leaky" and query["leaky.alpha"] == "0.2"
    assert query["dtypes"] is None and query["threads"] == "-"  # default left out; none chosen
    link = {k: v for k, v in query.items() if v is not None}
    assert form_from_query(link, defaults, OPTIONS) == form
    # A stale or edited link falls back to defaults instead of breaking the page.
    odd = form_from_query({"variants": "nn_relu,relu9", "repeats": "many", "dtypes": "int3"},
                          defaults, OPTIONS)
    assert odd["variants"] == ["nn_relu"] and odd["repeats"] == 7 and odd["dtypes"] == []


def test_form_from_a_stored_spec():
    defaults = form_defaults(OPTIONS["variants"], ["CPU:0"], 2)
    spec = RunSpec(variants=["where", {"id": "leaky", "params": {"alpha": 0.2}}],
                   shapes=[(1000,), (1000, 1000), (5,)], modes=["eager"], repeats=9,
                   min_time=0.01, label="again", threads=[1]).to_json()
    form = form_from_spec(json.loads(json.dumps(spec)), defaults)
    assert form["variants"] == ["where", "leaky"] and form["param_leaky_alpha"] == 0.2
    assert form["shape_presets"] == ["1000", "1000x1000"] and form["shape_custom"] == "5"
    assert (form["modes"], form["repeats"], form["label"], form["threads"]) == (
        ["eager"], 9, "again", [1])


def test_choices_survive_another_page_and_a_fresh_browser(data_dir):
    at = open_page()
    at.multiselect(key="variants").set_value(["nn_relu", "maximum", "leaky"]).run()
    at.number_input(key="param_leaky_alpha").set_value(0.2).run()
    at.text_input(key="label").set_value("my laptop baseline").run()
    at.number_input(key="repeats").set_value(3).run()
    link = dict(at.query_params)
    assert link["label"] == "my laptop baseline" and link["repeats"] == "3"
    at.switch_page("views/variants.py").run()
    at.switch_page("views/run.py").run()
    assert not at.exception
    assert at.multiselect(key="variants").value == ["nn_relu", "maximum", "leaky"]
    assert at.text_input(key="label").value == "my laptop baseline"
    assert at.number_input(key="repeats").value == 3
    assert at.number_input(key="param_leaky_alpha").value == 0.2
    assert not at.warning  # no "default value also set via Session State" warning
    fresh = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT_S)  # a new session: the link only
    fresh.query_params.update(link)
    fresh.run()
    assert fresh.multiselect(key="variants").value == ["nn_relu", "maximum", "leaky"]
    assert fresh.text_input(key="label").value == "my laptop baseline"
    assert fresh.number_input(key="param_leaky_alpha").value == 0.2


def test_run_again_fills_the_form_from_the_stored_spec(data_dir, store):
    spec = RunSpec(variants=["maximum", {"id": "leaky", "params": {"alpha": 0.3}}],
                   shapes=[(100000,), (2000,)], modes=["function"], repeats=11, label="stored")
    run_id = store.create_run(spec.to_json(), label="stored", n_cases=0)
    store.finish_run(run_id, "complete")
    at = open_page("compare", {"runs": run_id})
    at.button(key=f"run_again_{run_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Run a profile"
    assert at.multiselect(key="variants").value == ["maximum", "leaky"]
    assert at.number_input(key="param_leaky_alpha").value == 0.3
    assert at.multiselect(key="shape_presets").value == ["100000"]
    assert at.text_input(key="shape_custom").value == "2000"
    assert at.multiselect(key="modes").value == ["function"]
    assert at.number_input(key="repeats").value == 11
    assert at.text_input(key="label").value == "stored"


def test_run_again_on_a_run_without_a_profile_spec_is_one_line(data_dir, store):
    run_id = store.create_run({"scenario": "resnet", "variants": 3}, n_cases=0)
    at = open_page("compare", {"runs": run_id})
    at.button(key=f"run_again_{run_id}").click().run()
    assert not at.exception
    assert texts(at.error) and "no profile settings to run again" in texts(at.error)[0]


def shown_run(at, store, run_id: str, spec: RunSpec) -> None:
    """The Run page as it is once the background job for ``run_id`` has finished."""
    at.session_state["job"] = Job(total=6, spec=spec.to_json(), result=run_id, done=6,
                                  finished=True, shown=True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def form_spec(form: dict) -> RunSpec:
    """The spec the Run page builds from ``form`` (no parameters changed)."""
    return build_spec(dict(form, shapes=chosen_shapes(form["shape_presets"], form["shape_custom"])))


def test_results_name_their_run_and_warn_when_the_machine_was_noisy(data_dir, store):
    run_id = fill(store, synthetic_cases(), label="busy laptop")
    noise = {"verdict": "noisy", "reasons": ["load average 3.1 on 2 CPUs", "IQR 24% of median"]}
    with sqlite3.connect(store.db_path) as db:
        db.execute("UPDATE runs SET noise_verdict='noisy', noise_json=? WHERE run_id=?",
                   (json.dumps(noise), run_id))
    at = open_page()
    defaults = form_defaults(OPTIONS["variants"], ["CPU:0"], os.cpu_count() or 1)
    shown_run(at, store, run_id, form_spec(dict(defaults, variants=["nn_relu"])))
    notes = texts(at.info)
    assert any(run_id in n and "busy laptop" in n and "not to the form" in n for n in notes), notes
    # One short line; every reason behind the expander.
    assert texts(at.warning) == ["Noisy: load average 3.1 on 2 CPUs"]
    details = " ".join(texts(at.expander[-1].markdown))
    assert "load average 3.1 on 2 CPUs; IQR 24% of median" in details
    assert_short_numbers(at)
    # The form that made the run: no "belongs to another run" note, and a quiet run no warning.
    quiet_id = fill(store, synthetic_cases(), label="idle laptop")
    with sqlite3.connect(store.db_path) as db:
        db.execute("UPDATE runs SET noise_verdict='quiet' WHERE run_id=?", (quiet_id,))
    shown_run(at, store, quiet_id, form_spec(defaults))
    assert not [n for n in texts(at.info) if "not to the form" in n]
    assert not at.warning


def test_compare_page_tables_show_short_numbers_and_link_cases(data_dir, store):
    run_id = fill(store, synthetic_cases(modes=("eager", "function")))
    at = open_page("compare", {"runs": run_id, "view": "Table"})
    assert not at.error, texts(at.error)
    assert_short_numbers(at)
    table = next(d for d in at.dataframe if "trace" in d.value.columns)
    assert {"label", "shape", "mode", "median (µs)", "CI95"} <= set(table.value.columns)
    assert table.value["trace"].isna().all()  # fill() stores no trace files
    for tab in [t.label for t in at.get("tab")]:  # only the open tab is drawn: each in turn
        assert_short_numbers(open_tab(at, tab))


def test_variants_page_tables_show_short_numbers(data_dir):
    at = open_page("variants")
    assert at.dataframe and not at.exception
    assert_short_numbers(at)


def test_a_link_with_impossible_parameters_falls_back_to_defaults(data_dir):
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT_S)
    at.query_params.update({"variants": "clipped,leaky", "clipped.clip": "-5",
                            "leaky.alpha": "abc", "repeats": "x"})
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.multiselect(key="variants").value == ["clipped", "leaky"]
    assert at.number_input(key="param_clipped_clip").value == 5.0
    assert at.number_input(key="param_leaky_alpha").value == 0.01
    assert at.number_input(key="repeats").value == 7
