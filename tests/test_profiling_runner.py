"""run_profile end to end in real worker processes: stats, skips, isolation, cancel, refusal."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from helpers import assert_one_run_writer

from profiling.execution.runner import run_profile
from profiling.spec import RunSpec, SpecError
from profiling.storage.store import Store

FAST = {"repeats": 5, "min_time": 0.002, "warmup": 1}


def test_cases_stats_skips_and_traces(tmp_path):
    store = Store(tmp_path)
    progress = []
    spec = RunSpec(variants=["nn_relu", "int8", "custom_op"], shapes=[(1000,)],
                   modes=["eager", "function", "xla"], passes=["forward", "backward"],
                   threads=[1], **FAST)
    run_id = run_profile(spec, store, on_progress=progress.append)
    assert store.list_runs().set_index("run_id").loc[run_id, "status"] == "complete"
    cases = assert_one_run_writer(store, run_id, "profile", spec_kind=None)
    cases = cases.set_index(["variant", "mode", "pass"])
    assert len(cases) == 18

    ok = cases.loc[("nn_relu", "eager", "forward")]
    samples = store.samples(ok.case_id).seconds_per_call.to_numpy()
    assert len(samples) == 5 and ok.n_samples == 5
    assert ok.median_s == pytest.approx(np.median(samples))
    assert ok.min_s == pytest.approx(samples.min())
    assert ok.ci95_low_s <= ok.median_s <= ok.ci95_high_s
    assert ok.bytes_per_call == 8000
    assert ok.gbps == pytest.approx(8000 / ok.median_s / 1e9)
    assert ok.working_set_bytes == 8000 and ok.roof_gbps > 0
    assert ok.utilization == pytest.approx(ok.gbps / ok.roof_gbps)
    assert ok.peak_gbps >= ok.roof_gbps
    assert 0 < ok.floor_s < 1e-6  # the timing loop around a no-op: tens of ns
    # nn_relu is the baseline; custom_op ran interleaved with it, paired repeat by repeat
    assert ok.ratio_to_baseline == 1.0 and ok.baseline_case_id == ok.case_id
    co = cases.loc[("custom_op", "eager", "forward")]
    assert co.baseline_case_id == ok.case_id
    assert co.ratio_ci95_low <= co.ratio_to_baseline <= co.ratio_ci95_high
    own = store.samples(co.case_id).seconds_per_call.to_numpy()
    assert co.ratio_to_baseline == pytest.approx(np.median(own / samples))
    roof = store.roof(run_id)
    assert len(roof) >= 6 and roof.working_set_bytes.is_monotonic_increasing
    assert (roof.gbps >= roof.gbps_median).all() and (roof.roof_gbps >= roof.gbps - 1e-9).all()
    noise = json.loads(store.run(run_id)["noise_json"])
    assert noise["verdict"] in ("quiet", "noisy") and len(noise["groups"]) == 6
    assert {"load1", "other_cpu_frac", "steal_frac"} <= set(noise["groups"][0])
    assert ok.elements_per_s == pytest.approx(1000 / ok.median_s)
    assert ok.page_faults_per_call >= 0 and ok.peak_rss_mb > 50
    assert cases.loc[("nn_relu", "xla", "backward")].bytes_per_call == 20000
    assert (cases.loc["nn_relu"].status == "ok").all()

    int8 = cases.loc["int8"]
    assert (int8.status == "skipped").all()
    assert int8.reason.str.contains("float32").all()
    assert "XLA" in cases.loc[("custom_op", "xla", "forward")].reason

    assert len(store.op_stats(ok.case_id)) >= 1
    assert store.op_stats(ok.case_id).op_name.tolist()[0] == "Relu"
    assert store.trace_path(ok.case_id).name.endswith(".xplane.pb")
    assert set(store.breakdown([run_id]).case_id) >= {ok.case_id}
    calib = store.calibration(run_id)
    assert calib.method.iloc[0] in ("bandwidth_probe", "numpy_copy") and calib.peak_gbps.iloc[0] > 0
    env = store.environment(run_id)
    for key in ("tf_version", "cpu_model", "cores_logical", "intra_op_threads", "allocator",
                "op_build_info", "git_commit", "hostname", "time", "python"):
        assert key in env
    assert env["intra_op_threads"] == 1 and env["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    assert [p.done for p in progress if p.status != "running"][-1] == 18
    assert progress[-1].status == "complete"


def test_crash_hang_and_raise_are_isolated(tmp_path, faulty_variants):
    store = Store(tmp_path)
    spec = RunSpec(variants=["_test_segfault", "nn_relu", "_test_hang", "_test_raise", "where"],
                   shapes=[(100,)], modes=["eager"], threads=[1], trace=False, timeout_s=4,
                   **FAST)
    run_id = run_profile(spec, store)
    cases = store.cases([run_id]).set_index("variant")
    assert cases.loc["_test_segfault", "status"] == "failed"
    assert "SIGSEGV" in cases.loc["_test_segfault", "reason"]
    assert cases.loc["_test_hang", "status"] == "failed"
    assert "timed out" in cases.loc["_test_hang", "reason"]
    assert cases.loc["_test_raise", "status"] == "failed"
    assert "raised on purpose" in cases.loc["_test_raise", "reason"]
    assert cases.loc["nn_relu", "status"] == "ok" and cases.loc["where", "status"] == "ok"
    assert store.run(run_id)["status"] == "complete"
    assert len(store.environment(run_id)["configs"]) == 1  # restarts are the same config


def test_cancel_keeps_finished_cases(tmp_path):
    store = Store(tmp_path)
    cancel = threading.Event()

    def on_progress(p):
        if p.done >= 1:
            cancel.set()

    spec = RunSpec(variants=["nn_relu", "maximum", "where"], shapes=[(100,), (200,)],
                   modes=["eager"], threads=[1], trace=False, **FAST)
    run_id = run_profile(spec, store, on_progress=on_progress, cancel=cancel)
    assert store.run(run_id)["status"] == "interrupted"
    cases = store.cases([run_id])  # the first group (the three variants at 100) is kept whole
    assert len(cases) == 3 and (cases.status == "ok").all() and set(cases["shape"]) == {"100"}


def test_validation_names_field_and_refuses_huge_shapes(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(SpecError, match=r"invalid modes: 'jit'; accepted: eager, function, xla"):
        RunSpec(modes=["jit"]).validate()
    with pytest.raises(SpecError, match="variants.*nn_relu"):
        RunSpec(variants=["nope"]).validate()
    with pytest.raises(SpecError, match="alpha"):
        RunSpec(variants=[{"id": "leaky", "params": {"alpha": 7}}]).validate()
    with pytest.raises(SpecError, match="devices.*CPU:0"):
        RunSpec(devices=["TPU:0"]).validate()
    with pytest.raises(SpecError, match="repeats"):
        RunSpec(repeats=2).validate()
    with pytest.raises(SpecError, match="invalid shapes: '1000000x1000000'.*available"):
        run_profile(RunSpec(shapes=[(10**6, 10**6)]), store)
    assert store.list_runs().empty  # refused before anything ran or was stored
    cases = RunSpec(variants=["leaky:alpha=0.2"], shapes=[(10,)], threads=[1]).validate()
    assert cases[0].label == "leaky(alpha=0.2)" and cases[0].params == {"alpha": 0.2}
    assert json.dumps(cases[0].to_json())
    from profiling.spec import parse_variant, split_variants

    assert split_variants("nn_relu,clipped(clip=6),leaky:alpha=0.2") == [
        "nn_relu", "clipped(clip=6)", "leaky:alpha=0.2"]
    assert parse_variant("clipped(clip=6)") == parse_variant("clipped:clip=6") == {
        "id": "clipped", "params": {"clip": 6}}


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_midway_marks_interrupted_and_keeps_cases(tmp_path, sig):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "RELU_LAB_DATA": str(tmp_path), "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "profiling", "run", "--variants", "nn_relu,maximum,where,stable",
         "--sizes", "100,200,300", "--modes", "eager", "--threads", "1", "--no-trace",
         "--min-time", "0.05", "--quiet"], cwd=repo, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Store(tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if store.count("cases") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert "interrupted" in err and "Traceback" not in err
    runs = store.list_runs()
    assert runs.status.tolist() == ["interrupted"]
    kept = store.cases(runs.run_id.tolist())
    assert 1 <= len(kept) < 12 and (kept.status == "ok").all()


def test_worker_exits_when_the_runner_is_killed(tmp_path, faulty_variants):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import psutil

    repo = Path(__file__).resolve().parents[1]
    code = ("from profiling.execution.runner import run_profile; from profiling.spec import RunSpec; "
            "from profiling.storage.store import Store; "
            f"run_profile(RunSpec(variants=['_test_hang'], shapes=[(10,)], modes=['eager'], "
            f"threads=[1], trace=False, timeout_s=600, repeats=5), Store({str(tmp_path)!r}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ["PYTHONPATH"]])}
    runner = subprocess.Popen([sys.executable, "-c", code], cwd=repo, env=env)
    store = Store(tmp_path)
    deadline = time.monotonic() + 120
    workers: list = []
    while time.monotonic() < deadline and not workers:
        runs = store.list_runs()
        if len(runs) and len(store.calibration(runs.run_id.iloc[0])):  # worker is in the case
            workers = psutil.Process(runner.pid).children()
        time.sleep(0.1)
    assert workers, "the worker never started its case"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    gone, alive = psutil.wait_procs(workers, timeout=15)
    for p in alive:
        p.kill()
    assert not alive, "the worker outlived its runner"
    assert Store(tmp_path).list_runs().status.tolist() == ["interrupted"]
