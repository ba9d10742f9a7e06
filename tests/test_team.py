"""Team store: machine identity, history with a planted slowdown, the CI gate against the
newest matching run, two machines writing one PostgreSQL at once, migrate-store, the pages."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from helpers import figures, make_run, open_page, sql, table_rows, texts

from profiling.cli.main import main
from profiling.measurement.machine import IDENTITY_KEYS
from profiling.presentation.history import (
    FilterError,
    case_history,
    history_figure,
    machines_figure,
    mark_changes,
    parse_filter,
)
from profiling.storage.store import Store, new_run_id

REPO = Path(__file__).resolve().parents[1]
SERIAL = itertools.count()  # run ids in creation order, even within one second


def add_run(store: Store, machine: str, median: float, label: str = "main",
            commit: str = "abc") -> str:
    """A finished run of one nn_relu case (median ± 2%) measured on `machine`."""
    os.environ["RELU_LAB_MACHINE"] = machine
    run_id = store.create_run({}, label, 1, {"git_commit": commit},
                              run_id=f"{new_run_id()[:-6]}{next(SERIAL):06x}")
    store.add_case({"run_id": run_id, "case_id": f"{run_id}-0000", "idx": 0,
                    "variant": "nn_relu", "label": "nn_relu", "shape": "1000", "dtype": "float32",
                    "device": "CPU:0", "threads": 2, "mode": "eager", "pass": "forward",
                    "status": "ok", "median_s": median, "ci95_low_s": median * 0.98,
                    "ci95_high_s": median * 1.02, "n_samples": 7}, [median] * 7)
    store.finish_run(run_id, "complete")
    return run_id


@pytest.fixture
def machine_env(monkeypatch):
    monkeypatch.setenv("RELU_LAB_MACHINE", "")  # add_run sets it; restored afterwards


def test_a_run_records_its_machine(backend, machine_env, monkeypatch):
    store = Store(backend)
    monkeypatch.setenv("RELU_LAB_MACHINE", "gpu-box")
    run_id = store.create_run({}, "", 0, {"tf_version": "2.21.0", "git_commit": "deadbeef",
                                          "devices": ["/physical_device:CPU:0",
                                                      "/physical_device:GPU:0"],
                                          "op_build_info": {"key": "k123"}})
    run = store.run(run_id)
    identity = json.loads(run["machine_json"])
    assert run["machine"] == "gpu-box" and set(IDENTITY_KEYS) <= set(identity)
    assert identity["tf_version"] == "2.21.0" and identity["git_commit"] == "deadbeef"
    assert identity["gpus"] == ["/physical_device:GPU:0"] and identity["op_build_key"] == "k123"
    assert identity["cpu_model"] and identity["cores_logical"] >= 1
    assert identity["caches"]  # sysfs here: L1d/L1i/L2/L3
    assert store.list_runs().machine.tolist() == ["gpu-box"]


def test_history_marks_a_planted_slowdown_per_machine(backend, machine_env, capsys):
    store = Store(backend)
    for median in (1.00e-3, 1.01e-3, 0.99e-3, 1.50e-3, 1.49e-3):  # slower from the 4th run on
        add_run(store, "laptop", median)
    add_run(store, "server", 2e-3)
    add_run(store, "server", 2.01e-3)
    filters = parse_filter("variant=nn_relu,shape=1000,mode=eager")
    hist = case_history(store, filters)
    laptop = hist[hist.machine == "laptop"]
    assert laptop.change.tolist() == ["", "", "", "slower", ""]
    assert hist[hist.machine == "server"].change.tolist() == ["", ""]
    assert main(["history", "variant=nn_relu,shape=1000,mode=eager", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changes"] == 1 and len(out["points"]) == 7
    assert [p["change"] for p in out["points"] if p["machine"] == "laptop"][3] == "slower"
    assert main(["history", "variant=nn_relu,machine=server"]) == 0
    text = capsys.readouterr().out
    assert "server" in text and "laptop" not in text and "0 change(s)" in text


def test_history_refuses_bad_and_ambiguous_filters(backend, machine_env, capsys):
    store = Store(backend)
    run_id = add_run(store, "m", 1e-3)
    store.add_case({"run_id": run_id, "case_id": f"{run_id}-0001", "idx": 1,
                    "variant": "nn_relu", "shape": "1000", "threads": 1, "status": "ok",
                    "median_s": 1e-3})
    for bad in ("nope=1", "variant", "", "variant=nn_relu"):
        assert main(["history", bad]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("error: "), err
    assert len(case_history(store, {"variant": "nn_relu", "threads": "1"})) == 1


def test_mark_changes_and_figures_are_pure():
    hist = pd.DataFrame({"machine": ["a"] * 3 + ["b"] * 2, "run_id": list("pqrst"),
                         "created_at": ["1", "2", "3", "1", "2"],
                         "median_s": [1.0, 0.5, 0.5, 1.0, 1.0],
                         "ci95_low_s": [0.9, 0.4, 0.45, 0.9, None],
                         "ci95_high_s": [1.1, 0.6, 0.55, 1.1, None]})
    assert mark_changes(hist).change.tolist() == ["", "faster", "", "", ""]
    fig = history_figure(mark_changes(hist).assign(commit=None)).to_plotly_json()
    names = [t["name"] for t in fig["data"]]
    assert names == ["a", "a: faster (ratio CI excludes 1)", "b"]
    bars = machines_figure(hist).data[0]
    assert list(bars.x) == ["a", "b"] and list(bars.y) == [0.5e6, 1e6]
    with pytest.raises(FilterError, match="unknown filter key"):
        parse_filter("colour=red")


def test_compare_latest_against_the_newest_matching_run(backend, machine_env, capsys):
    store = Store(backend)
    add_run(store, "ci", 2.0e-3, "main")  # older main run: not the one compared against
    add_run(store, "ci", 1.0e-3, "main")
    add_run(store, "laptop", 5.0e-3, "main")  # another machine's main: ignored
    gate = ["compare", "latest", "--against", "machine=ci,label=main", "--max-regression", "5%"]
    add_run(store, "ci", 1.01e-3, "pr")
    assert main([*gate, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["regressions"] == 0
    fresh = add_run(store, "ci", 1.3e-3, "pr")  # 30% slower, CIs far apart
    assert main([*gate, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["run_b"] == fresh and out["regressions"] == 1
    assert store.run(out["run_a"])["label"] == "main"
    assert store.cases([out["run_a"]]).median_s.iloc[0] == 1.0e-3
    assert main(["compare", "latest", "--against", "machine=nowhere"]) == 2
    assert "no run matches" in capsys.readouterr().err


WRITER = textwrap.dedent("""
    import sys
    from profiling.storage.store import Store, new_run_id
    store = Store(sys.argv[1])
    run_id = store.create_run({}, "concurrent", 150, {})
    for i in range(150):
        store.add_case({"run_id": run_id, "case_id": f"{run_id}-{i:04d}", "idx": i,
                        "variant": "nn_relu", "shape": str(i), "status": "ok",
                        "median_s": 1e-6 * (i + 1)}, [1e-6, 2e-6, 3e-6])
        store.put_trace(f"{sys.argv[2]}-{i}".encode(), "t.xplane.pb")
    store.finish_run(run_id, "complete")
""")


def test_two_machines_write_one_postgresql_at_once(pg_url, machine_env, monkeypatch):
    Store(pg_url).close()  # schema in place; the writers then race only on rows
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, name], cwd=REPO,
                              env={**env, "RELU_LAB_MACHINE": name}, stderr=subprocess.PIPE)
             for name in ("laptop", "gpu-box")]
    reader = Store(pg_url)
    seen = set()
    while any(p.poll() is None for p in procs):  # the runs appear while they are written
        seen.add(sql(reader, "SELECT COUNT(*) FROM cases")[0][0])
    assert [p.returncode for p in procs] == [0, 0], [p.stderr.read().decode() for p in procs]
    runs = reader.list_runs()
    assert sorted(runs.machine) == ["gpu-box", "laptop"] and set(runs.status) == {"complete"}
    cases = reader.cases(runs.run_id.tolist())
    assert len(cases) == 300 and cases.case_id.is_unique
    assert sql(reader, "SELECT COUNT(*) FROM samples")[0][0] == 900
    assert sql(reader, "SELECT COUNT(*) FROM trace_blobs")[0][0] == 300
    assert len(seen) > 2  # intermediate counts were visible
    for machine, n in cases.merge(runs, on="run_id").groupby("machine").size().items():
        assert n == 150, machine

    # the dashboard on that store shows both machines' runs, grouped, and both in History
    monkeypatch.setenv("RELU_LAB_STORE", pg_url)
    at = open_page("compare")
    assert at.multiselect(key="compare_machines").options == ["gpu-box", "laptop"]
    titles = at.multiselect(key="compare_runs").options
    assert len(titles) == 2
    at.multiselect(key="compare_machines").set_value(["laptop"]).run()
    assert not at.exception
    only = at.multiselect(key="compare_runs").options  # titles: id · label · machine · …
    assert [t.split(" · ")[0] for t in only] == runs[runs.machine == "laptop"].run_id.tolist()
    assert all(" · laptop · " in t for t in only)
    hist = open_page("history", {"variant": "nn_relu", "shape": "7"})
    assert not hist.exception and not hist.error, texts(hist.error)
    chart = figures(hist)
    assert sorted(t["name"] for t in chart["chart_history"]["data"]) == ["gpu-box", "laptop"]
    assert list(chart["chart_machines"]["data"][0]["x"]) == ["gpu-box", "laptop"]


def test_migrate_store_copies_runs_and_traces_and_verifies(tmp_path, pg_url, capsys,
                                                           monkeypatch):
    source = Store(tmp_path / "old")
    runs = [make_run(source, "a", b"trace-a"), make_run(source, "b", b"trace-b"),
            make_run(source, "c", b"trace-a")]  # a trace shared by two runs
    source.close()
    args = ["migrate-store", "--from", f"sqlite:///{tmp_path / 'old'}", "--to", pg_url]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "copied 3 run(s), 0 already there" in out and "6 cases" in out, out
    monkeypatch.setenv("RELU_LAB_TRACE_CACHE", str(tmp_path / "another_machine"))
    target = Store(pg_url)  # as another machine: an empty trace cache
    assert set(target.list_runs().run_id) == set(runs)
    assert target.trace_path(f"{runs[1]}-0000").read_bytes() == b"trace-b"
    assert target.trace_path(f"{runs[2]}-0000").read_bytes() == b"trace-a"
    assert sql(target, "SELECT COUNT(*) FROM trace_blobs")[0][0] == 2
    assert main(args) == 0  # again: nothing to copy, still verified
    assert "copied 0 run(s), 3 already there" in capsys.readouterr().out
    for bad, why in (("mysql://x/y", "unsupported store URL"),
                     (f"sqlite:///{tmp_path / 'missing'}", "no store at")):
        assert main(["migrate-store", "--from", bad, "--to", pg_url]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0], err
    assert not (tmp_path / "missing").exists()


def test_store_flag_and_variable_choose_the_backend(pg_url, tmp_path, machine_env, capsys,
                                                    monkeypatch):
    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path / "local"))
    # empty = unset; setenv (not delenv of an absent variable) so that the value --store
    # leaves in this process is undone after the test
    monkeypatch.setenv("RELU_LAB_STORE", "")
    run_id = add_run(Store(pg_url), "shared", 1e-3)
    assert main(["--store", pg_url, "list", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)["runs"]] == [run_id]
    monkeypatch.setenv("RELU_LAB_STORE", "")  # --store set it for this process
    assert main(["list", "--json"]) == 0  # the default: SQLite in RELU_LAB_DATA, empty
    assert json.loads(capsys.readouterr().out)["runs"] == []
    assert (tmp_path / "local" / "relu_lab.sqlite").exists()
    monkeypatch.setenv("RELU_LAB_STORE", pg_url)
    assert Store().list_runs().run_id.tolist() == [run_id]
    for bad in ("postgresql://nobody@127.0.0.1:1/x", "ftp://x/y"):
        assert main(["--store", bad, "list"]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("error: "), err


def test_a_dropped_connection_is_reopened_between_transactions(pg_url, pg_server, machine_env):
    import psycopg

    store = Store(pg_url)  # e.g. the dashboard's long-lived handle
    run_id = add_run(store, "m", 1e-3)
    with psycopg.connect(pg_server.url, autocommit=True) as admin:  # a server restart, say
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", [pg_url.rsplit("/")[-1]])
    assert store.list_runs().run_id.tolist() == [run_id]
    assert len(store.cases([add_run(store, "m", 2e-3)])) == 1


def test_history_page_on_an_empty_store_and_with_a_planted_slowdown(backend, machine_env):
    at = open_page("history")
    assert not at.error and "No successful cases yet" in texts(at.info)[0]
    store = Store(backend)
    for median in (1e-3, 1e-3, 2e-3):
        add_run(store, "laptop", median)
    at = open_page("history", {"variant": "nn_relu"})
    assert not at.exception and not at.error, texts(at.error)
    names = [t["name"] for t in figures(at)["chart_history"]["data"]]
    assert names == ["laptop", "laptop: slower (ratio CI excludes 1)"]
    assert "1 change(s)" in texts(at.warning)[0]


def test_compare_page_groups_runs_by_machine_newest_first(backend, machine_env):
    store = Store(backend)
    runs = [add_run(store, m, 1e-3) for m in ("laptop", "laptop", "server", "laptop")]
    for minute, run_id in zip((1, 2, 4, 3), runs, strict=True):
        sql(store, "UPDATE runs SET created_at=:at WHERE run_id=:run",
            {"at": f"2026-01-01T00:0{minute}:00+00:00", "run": run_id})
    old, new, server, newer = runs
    at = open_page("compare")
    assert not at.exception and not at.error, texts(at.error)
    ids = [t.split(" · ")[0] for t in at.multiselect(key="compare_runs").options]
    assert ids == [server, newer, new, old]  # grouped; the machine with the newest run first
    assert at.multiselect(key="compare_runs").value == [server]  # the default: the newest run


def test_gpu_models_come_from_nvidia_smi_when_there_is_one(tmp_path, monkeypatch):
    from profiling.measurement.machine import gpu_models, machine_identity

    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi (this CPU machine has none)
    assert gpu_models() == [] and machine_identity()["gpu_models"] == []
    smi = tmp_path / "nvidia-smi"  # what the real tool prints for --query-gpu=name,memory.total
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559 MiB'\n"
                   "echo 'NVIDIA H100 80GB HBM3, 81559 MiB'\n")
    smi.chmod(0o755)
    assert gpu_models() == ["NVIDIA H100 80GB HBM3, 81559 MiB"] * 2
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert gpu_models() == []


def test_migrate_store_refuses_a_different_run_under_the_same_id(tmp_path, pg_url, capsys):
    source = Store(tmp_path / "old")
    clash = make_run(source, "mine", b"trace-a")
    source_url = f"sqlite:///{tmp_path / 'old'}"
    args = ["migrate-store", "--from", source_url, "--to", pg_url]
    assert main(args) == 0
    capsys.readouterr()
    # the target's run of that id is another one: another label, medians x7
    target = Store(pg_url)
    medians = sql(target, "SELECT case_id, median_s FROM cases WHERE run_id = :r", {"r": clash})
    sql(target, "UPDATE runs SET label = 'theirs' WHERE run_id = :r", {"r": clash})
    sql(target, "UPDATE cases SET median_s = median_s * 7 WHERE run_id = :r", {"r": clash})
    later = make_run(source, "later", b"trace-b")  # would be copied, but nothing may be
    source.close()
    before = table_rows(target)
    assert main(args) == 2
    captured = capsys.readouterr()
    err = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert clash in err[0] and "runs.label" in err[0] and "cases.median_s" in err[0], err
    assert "verified" not in captured.out
    assert table_rows(target) == before and later not in set(target.list_runs().run_id)
    # the same content on both sides still verifies, on a fresh target
    sql(target, "UPDATE runs SET label = 'mine' WHERE run_id = :r", {"r": clash})
    for case_id, median in medians:
        sql(target, "UPDATE cases SET median_s = :m WHERE case_id = :c",
            {"m": median, "c": case_id})
    assert main(args) == 0, capsys.readouterr().err
    assert "copied 1 run(s), 1 already there; verified" in capsys.readouterr().out
