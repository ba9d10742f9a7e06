"""Bundles: round trip through JSON, all-or-nothing import, hostile contents rejected."""

from __future__ import annotations

import copy
import json

import pytest

from profiling.storage.bundle import BundleError, export_bundle, import_bundle
from profiling.storage.store import Store


@pytest.fixture
def bundle(tmp_path):
    store = Store(tmp_path / "src")
    run_id = store.create_run({"variants": ["nn_relu"]}, "b", 1, {"tf_version": "x"})
    sha = store.put_trace(b"not-really-xplane", "t.xplane.pb")
    store.add_case({"run_id": run_id, "case_id": f"{run_id}-0000", "idx": 0, "status": "ok",
                    "median_s": 1.234567890123e-5, "trace_sha256": sha}, [1e-5, 2e-5])
    store.finish_run(run_id, "complete")
    return json.loads(json.dumps(export_bundle(store, [run_id]))), run_id


def test_round_trip_keeps_full_precision(bundle, backend):
    obj, run_id = bundle
    dest = Store(backend)
    assert import_bundle(dest, obj) == [run_id]
    case = dest.cases([run_id]).iloc[0]
    assert case.median_s == 1.234567890123e-5
    assert dest.trace_path(case.case_id).read_bytes() == b"not-really-xplane"
    assert dest.environment(run_id) == {"tf_version": "x"}


@pytest.mark.parametrize("corrupt", ["traversal", "bad_sha", "bad_b64", "orphan_case",
                                     "version", "dup_sample", "foreign_sample"])
def test_bad_bundles_write_nothing(bundle, backend, corrupt):
    obj, _ = bundle
    obj = copy.deepcopy(obj)
    t = obj["tables"]
    sha = t["traces"][0]["sha256"]
    if corrupt == "traversal":
        t["traces"][0]["filename"] = "../../evil.xplane.pb"
    elif corrupt == "bad_sha":
        obj["trace_files"][sha]["data_b64"] = "aGVsbG8="
    elif corrupt == "bad_b64":
        obj["trace_files"][sha]["data_b64"] = "!!!"
    elif corrupt == "orphan_case":
        t["cases"][0]["run_id"] = "elsewhere"
    elif corrupt == "foreign_sample":  # would add a sample to a case of another run
        t["samples"][0]["case_id"] = "20200101-000000-aaaaaa-0000"
    elif corrupt == "version":
        obj["version"] = 99
    else:
        t["samples"].append(dict(t["samples"][0]))
    dest = Store(backend)
    with pytest.raises(BundleError):
        import_bundle(dest, obj)
    assert dest.list_runs().empty
    assert dest.count("cases") == 0
    assert not any(dest.traces_dir.iterdir())
