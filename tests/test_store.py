"""The store on SQLite and PostgreSQL: round trip, stale runs and recovery, concurrent writer
processes, read snapshots (migrations: test_store_migrations.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from helpers import sql

from profiling.storage.store import CASE_COLUMNS, Store, UnknownRunError

REPO = Path(__file__).resolve().parents[1]


def _case(run_id: str, i: int, median: float = 1e-3) -> dict:
    return {"run_id": run_id, "case_id": f"{run_id}-{i:04d}", "idx": i, "variant": "nn_relu",
            "variant_params": "{}", "label": "nn_relu", "shape": "1000", "numel": 1000,
            "dtype": "float32", "device": "CPU:0", "threads": 2, "allocator": "bfc",
            "mode": "eager", "pass": "forward", "status": "ok", "median_s": median,
            "ci95_low_s": median * 0.9, "ci95_high_s": median * 1.1, "ci95_s": median * 0.1}


def test_round_trip(backend):
    store = Store(backend)
    run_id = store.create_run({"variants": ["nn_relu"]}, "label-x", 1, {"tf_version": "t"})
    ops = pd.DataFrame([{"op_name": "Relu", "op_type": "Relu", "occurrences": 3,
                         "self_time_us": 12.5, "total_time_us": 13.0, "device": "/host:CPU"}])
    sha = store.put_trace(b"trace-bytes", "x.xplane.pb")
    row = {**_case(run_id, 0), "trace_sha256": sha}
    store.add_case(row, [1e-3, 2e-3, 3e-3], ops, {"compute_us": 1.0, "memcpy_us": 2.0,
                                                  "collective_us": 0.0, "idle_us": 3.0,
                                                  "other_us": 4.0})
    store.add_fusion(run_id, pd.DataFrame([{"case_id": "f0", "variant": "nn_relu",
                                            "block": "conv", "fused": True, "kernels": 1.0}]))
    store.finish_run(run_id, "complete")
    store.close()

    again = Store(backend if "://" in backend else f"{backend}/relu_lab.sqlite")  # a file too
    runs = again.list_runs()
    assert list(runs.columns[:6]) == ["run_id", "created_at", "status", "n_cases", "label",
                                      "spec_json"]
    assert runs.status.tolist() == ["complete"] and runs.label.tolist() == ["label-x"]
    cases = again.cases([run_id])
    assert list(cases.columns) == [*CASE_COLUMNS, "run_label"]
    assert cases.median_s.iloc[0] == 1e-3
    cid = cases.case_id.iloc[0]
    assert again.samples(cid).seconds_per_call.tolist() == [1e-3, 2e-3, 3e-3]
    assert again.op_stats(cid).to_dict("records") == ops.to_dict("records")
    assert again.breakdown([run_id]).iloc[0].to_dict() == {
        "case_id": cid, "compute_us": 1.0, "memcpy_us": 2.0, "collective_us": 0.0,
        "idle_us": 3.0, "other_us": 4.0}
    fusion = again.fusion([run_id])
    assert fusion.fused.tolist() == [True] and fusion.block.tolist() == ["conv"]
    assert again.environment(run_id) == {"tf_version": "t"}
    assert again.trace_path(cid).read_bytes() == b"trace-bytes"
    assert again.resolve_run(run_id[:10]) == run_id
    with pytest.raises(UnknownRunError, match="unknown run id"):
        again.resolve_run("nope")
    with pytest.raises(UnknownRunError):
        again.resolve_run("_" * 8)  # not a LIKE pattern


def test_stale_running_run_becomes_interrupted(backend):
    store = Store(backend)
    run_id = store.create_run({}, "", 2)
    store.add_case(_case(run_id, 0))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    sql(store, "UPDATE runs SET pid=:pid WHERE run_id=:run", {"pid": dead.pid, "run": run_id})
    assert Store(backend).list_runs().status.tolist() == ["interrupted"]
    assert Store(backend).run(run_id)["status"] == "running"  # opening and reading write nothing
    assert Store(backend).recover() == 1
    assert Store(backend).run(run_id)["status"] == "interrupted"
    assert len(Store(backend).cases([run_id])) == 1  # finished cases kept


WRITER = textwrap.dedent("""
    import sys
    from profiling.storage.store import Store
    store = Store(sys.argv[1])
    run_id = store.create_run({}, sys.argv[2], 200)
    for i in range(200):
        store.add_case({"run_id": run_id, "case_id": f"{run_id}-{i:04d}", "idx": i,
                        "status": "ok", "median_s": i * 1e-6}, [1e-6, 2e-6])
    store.finish_run(run_id, "complete")
""")


def test_two_concurrent_writer_processes_lose_nothing(backend):
    Store(backend).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, backend, f"w{i}"], cwd=REPO,
                              stderr=subprocess.PIPE) for i in range(2)]
    reader = Store(backend)
    seen = 0
    while any(p.poll() is None for p in procs):  # reading while they write
        seen = max(seen, reader.count("cases"))
    errors = [p.stderr.read().decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    runs = reader.list_runs()
    assert sorted(runs.label) == ["w0", "w1"] and set(runs.status) == {"complete"}
    assert len(reader.cases(runs.run_id.tolist())) == 400
    assert reader.count("samples") == 800


def test_run_from_a_reused_pid_is_stale(backend):
    import os

    store = Store(backend)
    run_id = store.create_run({}, "", 1)
    # our own pid, but a process that started after the run -> not the run's process
    sql(store, "UPDATE runs SET pid=:pid, created_at='2000-01-01T00:00:00+00:00' "
        "WHERE run_id=:run", {"pid": os.getpid(), "run": run_id})
    assert Store(backend).list_runs().status.tolist() == ["interrupted"]
    live = store.create_run({}, "", 1)
    assert Store(backend).list_runs().set_index("run_id").status[live] == "running"


def test_export_reads_one_snapshot_while_a_run_writes(backend):
    from profiling.storage.store import export_rows

    reader, writer = Store(backend), Store(backend)
    run_id = reader.create_run({}, "", 2)
    reader.add_case(_case(run_id, 0), [1e-3])
    query, calls = reader.query, []

    def query_while_writing(statement):
        calls.append(statement)
        if len(calls) == 3:  # runs and cases read; the run stores another case
            writer.add_case(_case(run_id, 1), [2e-3])
        return query(statement)

    reader.query = query_while_writing
    rows = export_rows(reader, [run_id])
    assert len(rows["cases"]) == 1 and len(rows["samples"]) == 1  # no orphan sample


def test_saving_run_finishes_complete_failed_or_interrupted(tmp_path):
    import json

    store = Store(tmp_path)
    with store.saving_run({"model": "resnet"}, "ok", 1, kind="scenario") as done:
        store.add_case(_case(done, 0))
        assert store.run(done)["status"] == "running"
    with pytest.raises(ValueError), store.saving_run({}, "bad", 1) as failed:
        raise ValueError("half-way")
    with pytest.raises(KeyboardInterrupt), store.saving_run({}, "ctrl-c", 1) as stopped:
        raise KeyboardInterrupt
    status = store.list_runs().set_index("run_id").status
    assert (status[done], status[failed], status[stopped]) == ("complete", "failed",
                                                               "interrupted")
    assert json.loads(store.run(done)["spec_json"]) == {"kind": "scenario", "model": "resnet"}
    assert len(store.cases([done])) == 1
