"""Second line of defence: whatever a store row says (a store written before imports were
checked, a hand-edited database), no trace outside <data>/traces/ is ever opened, exported or
deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import fill, open_page, sql, synthetic_cases, texts

from profiling.storage.bundle import export_bundle
from profiling.storage.db import db_errors
from profiling.storage.store import Store

CHROME = {"traceEvents": [{"ph": "X", "name": "SecretOp", "pid": 1, "tid": 1, "ts": 0,
                           "dur": 5}]}


def hostile(store: Store, case_id: str, sha: str, filename: str | None = None) -> None:
    """Point a case at `sha` (and a traces row at `filename`) behind the store's back."""
    sql(store, "UPDATE cases SET trace_sha256=:sha WHERE case_id=:case", {"sha": sha,
                                                                        "case": case_id})
    if filename is not None:
        sql(store, "DELETE FROM traces WHERE sha256=:sha", {"sha": sha})
        sql(store, "INSERT INTO traces VALUES (:sha, :name, 1, '')", {"sha": sha, "name": filename})


@pytest.fixture
def setup(tmp_path, backend) -> tuple[Store, str, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("secret.xplane.pb", "secret.json"):
        (outside / name).write_text(json.dumps(CHROME))
    store = Store(backend)
    run_id = fill(store, synthetic_cases(variants={"nn_relu": 1.0}))
    return store, run_id, outside


def first_case(store: Store, run_id: str) -> str:
    return str(store.cases([run_id]).case_id.iloc[0])


@pytest.mark.parametrize("how", ["relative_sha", "absolute_sha", "row_filename", "nul",
                                 "symlink"])
def test_trace_path_never_leaves_the_traces_dir(setup, how):
    store, run_id, outside = setup
    case_id = first_case(store, run_id)
    if how == "relative_sha":
        hostile(store, case_id, "../../outside/secret")
    elif how == "absolute_sha":
        hostile(store, case_id, str(outside / "secret"))
    elif how == "row_filename":
        hostile(store, case_id, "a" * 64, "../../outside/secret.json")
    elif how == "nul":
        if store.dialect == "postgresql":  # its text columns refuse NUL: nothing to plant
            with pytest.raises(db_errors(), match="NUL"):
                hostile(store, case_id, "a" * 64, "a" * 64 + ".xplane\x00.pb")
            return
        hostile(store, case_id, "a" * 64, "a" * 64 + ".xplane\x00.pb")
    else:
        (store.traces_dir / ("b" * 64 + ".xplane.pb")).symlink_to(outside / "secret.xplane.pb")
        hostile(store, case_id, "b" * 64)
    assert store.trace_path(case_id) is None
    bundle = export_bundle(store, [run_id])
    assert bundle["trace_files"] == {}  # the outside file is not embedded either
    store.delete_runs([run_id])
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json", "secret.xplane.pb"]


def test_a_stored_trace_inside_still_opens(setup):
    store, run_id, _ = setup
    case_id = first_case(store, run_id)
    sha = store.put_trace(b"inside", "t.xplane.pb")
    hostile(store, case_id, sha)
    assert store.trace_path(case_id) == store.traces_dir / f"{sha}.xplane.pb"


def test_traces_page_does_not_open_a_file_outside_the_data_dir(setup):
    store, run_id, _ = setup
    hostile(store, first_case(store, run_id), "a" * 64, "../../outside/secret.json")
    at = open_page("traces", {"run": run_id})
    assert at.radio(key="trace_source").value == "A trace stored by a run"
    assert not at.exception and not at.error, texts(at.error)
    assert "This run stored no traces." in texts(at.info)
    assert not at.get("plotly_chart")
