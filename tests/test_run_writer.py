"""The one run writer on a real SQLite store: case ids, kinds, run status, fusion rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import assert_one_run_writer

from profiling.plain import json_safe
from profiling.storage.run_writer import CaseResult, RunWriter, case_id, fusion_id
from profiling.storage.store import Store


def test_cases_get_the_one_id_format_kind_and_stats(tmp_path):
    store = Store(tmp_path)
    with RunWriter(store, "scenario", {"model": "resnet"}, "w", n_cases=2) as w:
        first = w.add(w.case(0, "nn_relu", samples=[3.0, 1.0, 2.0], number=4))
        w.add(CaseResult(1, "scenario", "maximum", status="failed", reason="boom"))
    assert first == case_id(w.run_id, 0) == f"{w.run_id}-0000"
    cases = assert_one_run_writer(store, w.run_id, "scenario").set_index("case_id")
    assert cases.loc[first, "median_s"] == 2.0 and cases.loc[first, "n_samples"] == 3
    assert cases.loc[w.case_id(1), "status"] == "failed"
    assert cases.loc[w.case_id(1), "reason"] == "boom"
    assert store.run(w.run_id)["status"] == "complete"


def test_a_given_run_id_another_spec_kind_or_none(tmp_path):
    store = Store(tmp_path)
    with RunWriter(store, "claim", {"numel": 8}, run_id="20260101-000000-abcdef",
                   spec_kind="claims") as w:
        w.add(w.case(0, "where", samples=[1.0]))
    assert w.run_id == "20260101-000000-abcdef"
    assert_one_run_writer(store, w.run_id, "claim", spec_kind="claims")
    with RunWriter(store, "profile", {"variants": ["nn_relu"]}, kind_in_spec=False) as p:
        p.add(p.case(0, "nn_relu", samples=[1.0]))
    assert_one_run_writer(store, p.run_id, "profile", spec_kind=None)
    assert json.loads(store.run(p.run_id)["spec_json"]) == {"variants": ["nn_relu"]}


def test_run_status_failed_interrupted_and_an_error(tmp_path):
    store = Store(tmp_path)
    with RunWriter(store, "capture", {}) as failed:
        failed.add(failed.case(0, "capture", status="failed", reason="no"))
    with pytest.raises(KeyboardInterrupt), RunWriter(store, "capture", {}) as stopped:
        raise KeyboardInterrupt
    with pytest.raises(ValueError), RunWriter(store, "capture", {}) as broken:
        raise ValueError("x")
    assert [store.run(w.run_id)["status"] for w in (failed, stopped, broken)] == [
        "failed", "interrupted", "failed"]


def test_bad_kind_is_refused_before_anything_is_stored(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="bad case kind 'scenarios'"):
        RunWriter(store, "scenarios", {})
    with pytest.raises(ValueError, match="bad case kind"):
        CaseResult(0, "profiles", "nn_relu")
    assert store.list_runs().empty


def test_fusion_rows_without_a_case_get_fusion_ids(tmp_path):
    store = Store(tmp_path)
    with RunWriter(store, "profile", {}, kind_in_spec=False) as w:
        w.add_fusion(pd.DataFrame([{"variant": "nn_relu", "block": "conv", "fused": True},
                                   {"variant": "maximum", "block": "conv", "fused": False}]))
    fusion = store.fusion([w.run_id])
    assert sorted(fusion["case_id"]) == [fusion_id(w.run_id, 0), fusion_id(w.run_id, 1)]


def test_json_safe_makes_numpy_and_non_finite_values_plain():
    import numpy as np

    got = json_safe({"a": np.float32(1.5), "b": (np.int64(2), float("nan")), 3: np.bool_(True),
                     "df": pd.DataFrame({"x": [np.inf]})})
    assert got == {"a": 1.5, "b": [2, None], "3": True, "df": [{"x": None}]}
    assert json.dumps(got, allow_nan=False)
