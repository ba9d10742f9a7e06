"""The Run page in a new session (a reload, another browser): it says what the lab is for and
shows the last stored profile run's results, or the run its URL names."""

from __future__ import annotations

import json
import sqlite3

import pytest
from helpers import fill, open_page, synthetic_cases, texts

from profiling.spec import RunSpec
from profiling.storage.store import Store


@pytest.fixture
def store(data_dir):
    with Store(data_dir) as store:
        yield store


def stored_profile(store: Store, label: str, minute: int, spec: dict | None = None) -> str:
    """A stored run of synthetic cases started at 10:``minute`` whose spec is ``spec`` (a real
    RunSpec's by default)."""
    run_id = fill(store, synthetic_cases(), label=label)
    spec = RunSpec(variants=["nn_relu"], label=label).to_json() if spec is None else spec
    with sqlite3.connect(store.db_path) as db:
        db.execute("UPDATE runs SET spec_json=?, created_at=? WHERE run_id=?",
                   (json.dumps(spec), f"2026-01-01T10:{minute:02d}:00+00:00", run_id))
    return run_id


def restored_run(at) -> str:
    (note,) = [n for n in texts(at.info) if n.startswith("Last run")]
    return note.split("`")[1]


def test_a_fresh_session_shows_the_newest_profile_run(data_dir, store):
    at = open_page()
    assert "ReLU Lab measures how fast each ReLU implementation" in " ".join(texts(at.markdown))
    assert not [n for n in texts(at.info) if n.startswith("Last run")]  # nothing stored yet
    older = stored_profile(store, "older", 1)
    newer = stored_profile(store, "newer", 2)
    stored_profile(store, "a scenario", 3, {"kind": "scenario", "model": "resnet"})  # newest
    at = open_page()
    assert not at.exception
    assert restored_run(at) == newer
    assert at.dataframe and any("trace" in d.value.columns for d in at.dataframe)
    assert at.get("plotly_chart")
    # The URL's run wins over the newest; an unknown one falls back to the newest.
    at = open_page()
    at.query_params["run"] = older
    at.run()
    assert restored_run(at) == older
    at.query_params["run"] = "no-such-run"
    at.run()
    assert restored_run(at) == newer


def long_table_page(rows: int) -> None:
    import pandas as pd

    from app import tables
    from profiling.presentation import units

    tables.show(pd.DataFrame({"op": [f"op{i}" for i in range(rows)],
                              "self_us": [float(i) for i in range(rows)]}),
                key="long", style=units.readable)


def test_a_long_table_is_paged_with_its_row_count():
    from streamlit.testing.v1 import AppTest

    from app.tables import PAGE_ROWS, height

    assert height(3) == 4 * 35 + 3 and height(500) == height(PAGE_ROWS)
    at = AppTest.from_function(long_table_page, args=(120,))
    at.run()
    assert not at.exception
    assert len(at.dataframe[0].value) == PAGE_ROWS and "Rows 1–50 of 120" in texts(at.caption)
    at.number_input(key="long_page").set_value(3).run()
    assert list(at.dataframe[0].value["op"]) == [f"op{i}" for i in range(100, 120)]
    assert "Rows 101–120 of 120" in texts(at.caption)
    short = AppTest.from_function(long_table_page, args=(16,))
    short.run()  # 16 rows: all of them, no pager
    assert len(short.dataframe[0].value) == 16 and not short.number_input and not short.caption
