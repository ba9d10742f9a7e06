"""No stray files: the temp dir holds the same entries before and after a run, a scenario, a
capture and a killed run (the next Store removes what a killed process left), and no command
prints TensorFlow's start-up log lines on stderr.

Each command runs with TMPDIR set to a private dir of this test, so other processes on the
machine cannot disturb the count.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import start_target, wait_ready

from profiling.storage.bundle import export_bundle, import_bundle
from profiling.storage.store import Store
from profiling.tempdirs import make_temp_dir, remove_dead_temp_dirs

REPO = Path(__file__).resolve().parents[1]
TF_NOISE = ("I0000", "W0000", "absl::InitializeLog", "oneDNN", "cpu_feature_guard")


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return {**os.environ, "TMPDIR": str(tmp), "RELU_LAB_DATA": str(tmp_path / "data"),
            "PYTHONPATH": str(REPO)}


def entries(env: dict[str, str]) -> list[str]:
    return sorted(os.listdir(env["TMPDIR"]))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "profiling", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=400)
    noise = [ln for ln in out.stderr.splitlines() if any(n in ln for n in TF_NOISE)]
    assert not noise, noise  # TF's chatter would bury our one-line messages
    return out


def test_run_scenario_and_capture_leave_no_temp_entries(env, tmp_path, monkeypatch):
    assert entries(env) == []
    out = cli(env, "run", "--variants", "nn_relu", "--sizes", "1000", "--modes",
              "eager,function", "--threads", "1", "--min-time", "0.002", "--quiet", "--json")
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    assert all(Store(env["RELU_LAB_DATA"]).trace_path(c["case_id"]) for c in run["cases"])
    assert entries(env) == []

    out = cli(env, "scenario", "wide_deep", "--variants", "nn_relu", "--batch", "4",
              "--hidden", "8", "--repeats", "2", "--min-time", "0.001", "--train-steps", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["run_id"]
    assert entries(env) == []

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the target's own files do not count
    target, address = start_target("busy")
    try:
        wait_ready(target)
        out = cli(env, "capture", address, "--duration-ms", "300", "--json")
    finally:
        target.kill()
        target.wait(timeout=10)
    assert out.returncode == 0, out.stderr
    captured = json.loads(out.stdout)
    (row,) = captured["traces"]
    assert row["status"] == "ok" and Path(row["path"]).parent == Path(captured["logdir"])
    assert Path(row["path"]).is_relative_to(Path(env["RELU_LAB_DATA"]))
    assert entries(env) == []
    # real runs of every kind pass the import checks: exported and imported elsewhere, whole
    with Store(env["RELU_LAB_DATA"]) as store:
        runs = sorted(store.list_runs().run_id)
        bundle = json.loads(json.dumps(export_bundle(store, runs)))
    assert len(runs) == 3 and len(bundle["trace_files"]) >= 3
    with Store(tmp_path / "elsewhere") as other:
        assert sorted(import_bundle(other, bundle)) == runs
        assert all(other.trace_path(c) for c in other.cases(runs).query("status == 'ok'")
                   .case_id if other.trace_sha(c))


def stored_cases(env: dict[str, str]) -> int:
    path = Path(env["RELU_LAB_DATA"]) / "relu_lab.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def autograph_files(env: dict[str, str]) -> list[Path]:
    return list(Path(env["TMPDIR"]).glob("relu_lab_worker_*/__autograph_generated_file*"))


def test_a_terminated_run_leaves_no_autograph_file(env):
    """SIGTERM: the CLI stops the run and kills its worker mid-case; TensorFlow in the worker
    never removes its generated files, so they must be in a dir the CLI removes."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "profiling", "run", "--variants", "nn_relu,maximum,where",
         "--sizes", "1e5,1e6", "--modes", "function", "--threads", "1", "--min-time", "0.3",
         "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not autograph_files(env):
        time.sleep(0.2)
    assert proc.poll() is None and autograph_files(env), "no autograph file to clean up"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert entries(env) == []


def test_a_killed_run_leaves_nothing_once_a_command_writes(env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "profiling", "run", "--variants", "nn_relu,maximum,where",
         "--sizes", "1e5,1e6", "--modes", "function", "--threads", "1", "--min-time", "0.3",
         "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    owned = (f"relu_lab_trace_{proc.pid}-", f"relu_lab_worker_{proc.pid}-")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        names = entries(env)
        if all(any(n.startswith(p) for n in names) for p in owned) and stored_cases(env):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be killed"
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)  # no cleanup runs in the CLI
    proc.wait(timeout=10)
    psutil.wait_procs(workers, timeout=20)  # they notice their parent is gone
    left = entries(env)
    assert any(n.startswith(owned[0]) for n in left)  # what the fix has to clean
    out = cli(env, "list", "--json")  # a command that only reads: it changes nothing
    assert out.returncode == 0, out.stderr
    (run,) = json.loads(out.stdout)["runs"]
    assert run["status"] == "interrupted"  # what it is, though not yet recorded
    assert sorted(entries(env)) == sorted(left)
    out = cli(env, "run", "--variants", "nn_relu", "--sizes", "100", "--modes", "eager",
              "--threads", "1", "--repeats", "5", "--min-time", "0.001", "--no-trace", "--json")
    assert out.returncode == 0, out.stderr  # the next command that writes cleans up first
    assert entries(env) == []
    with Store(env["RELU_LAB_DATA"]) as store:
        assert store.run(run["run_id"])["status"] == "interrupted"


def test_remove_dead_temp_dirs_keeps_live_owners_and_foreign_dirs(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    mine = Path(make_temp_dir("trace"))  # this process: alive
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan = tmp_path / f"relu_lab_scenario_{dead.stdout.strip()}-abc123_x"
    orphan.mkdir()
    (orphan / "trace.xplane.pb").write_bytes(b"x")
    foreign = [tmp_path / "relu_lab_trace_12345_abcd", tmp_path / "other_99-dir"]
    for path in foreign:  # no "<pid>-" in the name: not ours to judge
        path.mkdir()
    assert remove_dead_temp_dirs() == [orphan]
    assert mine.is_dir() and all(p.is_dir() for p in foreign) and not orphan.exists()
