"""One trace, one answer: a multi-device training step's collective time is the same in the
scenario's worker table, the store's breakdown and `trace-summary --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from profiling.experiments.distributed import DistributedConfig, run_distributed

TINY = {"image_size": 8, "channels": 4, "blocks": 1, "global_batch": 8, "steps": 2,
        "warmup": 1, "trace_steps": 1, "threads": 1, "timeout_s": 150}


def test_collective_time_is_the_same_on_every_surface(data_dir):
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
