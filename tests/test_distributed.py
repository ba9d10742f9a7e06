"""Distributed scenario runs in real worker subprocesses: two logical CPUs under MirroredStrategy
and two MultiWorkerMirroredStrategy workers on 127.0.0.1, each bounded by a timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import assert_one_run_writer

from profiling.experiments.distributed import DistributedConfig, DistributedError, run_distributed
from profiling.experiments.scenarios import ScenarioError
from profiling.presentation import scenario_charts

TINY = {"image_size": 8, "channels": 4, "blocks": 1, "global_batch": 8, "steps": 2,
        "warmup": 1, "trace_steps": 1, "threads": 1, "timeout_s": 150}


def test_mirrored_over_two_logical_cpus_reports_collective_time(data_dir):
    """Also: one trace, one answer. The collective time is the same in the scenario's worker
    table, the store's breakdown and `trace-summary --json` of the stored trace."""
    from profiling.storage.store import Store

    store = Store()
    result = run_distributed(DistributedConfig(strategy="mirrored", logical_cpus=2, **TINY),
                             store=store)
    (worker,) = result.workers.to_dict("records")
    stored = store.breakdown([result.run_id]).iloc[0]
    path = store.trace_path(store.cases([result.run_id])["case_id"].iloc[0])
    proc = subprocess.run([sys.executable, "-m", "profiling", "trace-summary", str(path),
                           "--json"], capture_output=True, text=True, timeout=300, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    summary = json.loads(proc.stdout)
    assert summary["thread_time"]["collective_us"] > 0  # the all-reduce is in the trace
    for key in ("compute_us", "collective_us", "memcpy_us", "other_us", "idle_us"):
        assert worker[key] == pytest.approx(summary["breakdown"][key]), key
        assert stored[key] == pytest.approx(summary["breakdown"][key]), key
    assert worker["collective_thread_us"] == pytest.approx(summary["thread_time"]
                                                           ["collective_us"])
    assert worker["replicas"] == 2
    assert worker["devices"].count("CPU:") == 2
    # In wall time compute outranks communication, so an all-reduce that runs wholly under the
    # other replica's compute shows 0 there (it happens on a busy 2-vCPU machine); its own
    # thread time is never hidden.
    assert worker["collective_thread_us"] > 0 and worker["compute_us"] > 0
    # the fraction is of wall time, so it may be 0 for the same reason (a clean-clone run
    # read 0.0); it is the breakdown's own share, never all of it
    wall = summary["breakdown"]
    assert worker["collective_fraction"] == pytest.approx(
        wall["collective_us"] / (wall["compute_us"] + wall["collective_us"]))
    assert 0 <= worker["collective_fraction"] < 1
    collectives = result.op_stats[result.op_stats["category"] == "collective"]
    assert collectives["op_type"].str.contains("CollectiveReduce").any()
    cases = assert_one_run_writer(store, result.run_id, "distributed")
    assert list(cases["mode"]) == ["mirrored"]
    # the store keeps the all-reduce itself, whatever its wall-time share
    stored_ops = store.op_stats(cases["case_id"].iloc[0])
    assert stored_ops["op_type"].str.contains("CollectiveReduce").any()
    assert store.trace_path(cases["case_id"].iloc[0]) is not None
    assert worker["xplane_path"] == str(store.trace_path(cases["case_id"].iloc[0]))
    assert not list(Path(tempfile.gettempdir()).glob(f"relu_lab_dist_{os.getpid()}-*"))
    fig = scenario_charts.compute_comm_figure(result.workers)
    assert [t.name for t in fig.data] == ["compute", "collective", "memcpy", "other"]


def test_two_multiworker_workers_on_loopback_all_reduce():
    result = run_distributed(DistributedConfig(strategy="multiworker", workers=2,
                                               communication="RING", **TINY))
    workers = result.workers
    assert list(workers["worker"]) == [0, 1]
    assert (workers["replicas"] == 2).all()
    assert (workers["collective_thread_us"] > 0).all()  # wall time may be hidden by compute
    # both replicas apply the same all-reduced gradients, so they end on the same loss
    assert workers["final_loss"].iloc[0] == pytest.approx(workers["final_loss"].iloc[1])
    assert set(result.op_stats[result.op_stats["category"] == "collective"]["worker"]) == {0, 1}


def test_a_run_past_its_timeout_is_killed_with_a_one_line_error(tmp_path):
    cfg = DistributedConfig(strategy="multiworker", workers=2, **{**TINY, "timeout_s": 1})
    with pytest.raises(DistributedError, match="did not finish within 1 s") as info:
        run_distributed(cfg, out_dir=str(tmp_path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"strategy": "parameter_server"}, "strategy="),
    ({"communication": "MPI"}, "communication="),
    ({"workers": 1, "strategy": "multiworker"}, "workers=1"),
    ({"variant": "relu9"}, "relu9"),
])
def test_bad_distributed_config_is_rejected_before_any_process_starts(kwargs, fragment):
    with pytest.raises(ScenarioError, match=fragment):
        run_distributed(DistributedConfig(**kwargs))


def _alive(pid: int) -> bool:
    """Running or sleeping (a zombie has exited; it only waits to be reaped)."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_a_worker_whose_parent_is_killed_exits():
    """A SIGKILLed parent runs no cleanup: the child must notice and leave by itself."""
    child = ("from profiling.process import exit_with_parent; import time; "
             "exit_with_parent(poll_s=0.1); time.sleep(60)")
    parent = ("import subprocess, sys; from profiling.process import child_env; "
              f"p = subprocess.Popen([sys.executable, '-c', {child!r}], env=child_env()); "
              "print(p.pid, flush=True); p.wait()")
    root = Path(__file__).resolve().parents[1]
    with subprocess.Popen([sys.executable, "-c", parent], cwd=root, stdout=subprocess.PIPE,
                          text=True) as proc:
        child_pid = int(proc.stdout.readline())
        time.sleep(2)  # the child has imported profiling.experiments.distributed and is watching
        proc.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    gone = not _alive(child_pid)
    if not gone:
        os.kill(child_pid, signal.SIGKILL)
    assert gone
