"""`scenario` and `capture` check their arguments as strictly as `run`: a device this machine
lacks, sizes that cannot fit in memory and absurd counts are one-line errors (exit 2) before
anything runs or is stored; a run none of whose cases worked is stored `failed`, never
`complete`; every --json output is strict JSON (no NaN)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from profiling.process import free_port
from profiling.storage.store import Store

REPO = Path(__file__).resolve().parents[1]
# the smallest real scenario: seconds, whatever the flag under test does
TINY_RESNET = ["--image-size", "4", "--channels", "2", "--blocks", "1", "--batch", "2",
               "--repeats", "1", "--min-time", "0", "--train-steps", "1", "--train-samples",
               "4", "--no-trace"]
TINY_WIDE = ["--hidden", "4", "--batch", "2", "--repeats", "1", "--min-time", "0",
             "--train-steps", "1", "--train-samples", "4", "--no-trace"]


def _refused(argv: list[str], capsys: pytest.CaptureFixture, data: Path, *fragments: str
             ) -> str:
    """Run the CLI in-process: exit 2, one stderr line holding every fragment, nothing stored."""
    from profiling.cli.main import main

    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), (code, err)
    for fragment in fragments:
        assert fragment in err, err
    assert not (data / "relu_lab.sqlite").exists()  # no store opened, no run saved
    return err


def _strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in --json output")

    return json.loads(text, parse_constant=refuse)


# --- devices ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, fragments", [
    (["--strategy", "mirrored", "--devices", "GPU:7"], ["invalid devices: 'GPU:7'", "CPU:0"]),
    (["--strategy", "mirrored", "--devices", "CPU:0,CPU:0"], ["'CPU:0'", "given twice"]),
    (["--devices", "CPU:0"], ["--devices", "--strategy mirrored"]),
    (["--strategy", "multiworker", "--devices", "CPU:0"], ["--devices", "--strategy mirrored"]),
])
def test_scenario_refuses_devices_as_run_does(flags, fragments, capsys, data_dir):
    _refused(["scenario", "resnet", "--variants", "nn_relu", *TINY_RESNET, "--steps", "1",
              *flags], capsys, data_dir, *fragments)


def test_run_and_calibrate_give_the_same_device_error(capsys, data_dir):
    run = _refused(["run", "--devices", "GPU:7", "--variants", "nn_relu"], capsys, data_dir)
    assert _refused(["calibrate", "--device", "GPU:7"], capsys, data_dir) == run


def test_mirrored_logical_cpus_are_devices_the_worker_makes():
    from profiling.experiments.distributed import DistributedConfig
    from profiling.experiments.scenarios import ScenarioError

    DistributedConfig(devices=["CPU:0", "CPU:1"]).validate()  # two logical CPUs: accepted
    with pytest.raises(ScenarioError, match="invalid devices: 'CPU:2'"):
        DistributedConfig(devices=["CPU:0", "CPU:2"]).validate()


# --- memory ----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["scenario", "resnet", "--image-size", "100000"],
    ["scenario", "resnet", "--batch", "1000000000"],
    ["scenario", "resnet", "--channels", "1000000"],
    ["scenario", "wide_deep", "--hidden", "1000000,1000000"],
    ["scenario", "resnet", "--strategy", "mirrored", "--variants", "nn_relu", "--image-size",
     "100000"],
    ["scenario", "resnet", "--kind", "batch_sweep", "--variants", "nn_relu", "--batches",
     "65536", "--image-size", "256", "--channels", "1", "--blocks", "1", "--batch", "1",
     "--train-samples", "1"],
])
def test_sizes_that_cannot_fit_in_memory_are_refused_before_anything_runs(argv, capsys,
                                                                          data_dir):
    _refused(argv, capsys, data_dir, "fit in free memory", "GiB available")


def test_the_default_scenario_fits():
    from profiling.experiments.scenarios import ScenarioConfig

    ScenarioConfig().validate()
    ScenarioConfig(model="wide_deep").validate()


# --- a run that measured nothing -------------------------------------------------------------


def _case(run_id: str, idx: int, status: str) -> dict:
    return {"run_id": run_id, "case_id": f"{run_id}-{idx:03d}", "idx": idx,
            "variant": "nn_relu", "status": status, "reason": "" if status == "ok" else "x"}


@pytest.mark.parametrize("statuses, expected", [
    (["failed"], "failed"),
    (["failed", "skipped"], "failed"),
    (["failed", "ok"], "complete"),
    (["skipped"], "complete"),
    ([], "complete"),
])
def test_a_run_none_of_whose_cases_worked_is_stored_failed(backend, statuses, expected):
    with Store(backend) as store:
        with store.saving_run({"kind": "scenario"}, n_cases=len(statuses)) as run_id:
            for i, status in enumerate(statuses):
                store.add_case(_case(run_id, i, status))
        other = store.create_run({}, n_cases=1)  # a writer that finishes by hand
        store.add_case(_case(other, 0, "failed"))
        store.finish_run(other, "complete")
        assert store.run(run_id)["status"] == expected
        assert store.run(other)["status"] == "failed"
        assert store.list_runs().set_index("run_id").loc[run_id, "status"] == expected


def test_the_cli_says_in_one_line_when_every_variant_failed(capsys):
    from profiling.cli.scenario import report_failures

    summary = pd.DataFrame({"label": ["nn_relu", "maximum"], "status": ["failed", "failed"],
                            "reason": ["MemoryError: no room", "MemoryError: none"]})
    assert report_failures(summary) == 1
    err = capsys.readouterr().err
    assert err == "error: every variant failed; nn_relu: MemoryError: no room\n", err
    summary.loc[1, "status"] = "ok"
    assert report_failures(summary) == 1
    assert capsys.readouterr().err == ("error: 1 of 2 variants failed; nn_relu: MemoryError: "
                                       "no room\n")
    summary.loc[0, "status"] = "skipped"
    assert report_failures(summary) == 0 and capsys.readouterr().err == ""


# --- strict JSON -----------------------------------------------------------------------------


def _cli(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """The CLI in a fresh process whose custom-op cache is empty, so custom_op is skipped (its
    numbers missing) as on a machine that never ran `make build`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "RELU_LAB_DATA": str(tmp_path / "data"),
           "RELU_LAB_CACHE": str(tmp_path / "no_build")}
    return subprocess.run([sys.executable, "-m", "profiling", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_scenario_json_with_a_skipped_variant_is_strict_json(tmp_path):
    out = _cli(["scenario", "wide_deep", "--variants", "nn_relu,custom_op", *TINY_WIDE,
                "--no-store", "--json"], tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {r["label"]: r for r in _strict_json(out.stdout)["summary"]}
    assert rows["custom_op"]["status"] == "skipped"
    assert rows["custom_op"]["loss_vs_baseline"] is None
    assert rows["nn_relu"]["loss_vs_baseline"] == 1.0


def test_guide_json_with_a_skipped_variant_is_strict_json(tmp_path):
    out = _cli(["scenario", "wide_deep", "--kind", "batch_sweep", "--batches", "2",
                "--variants", "nn_relu,custom_op", *TINY_WIDE, "--no-store", "--json"],
               tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {r["label"]: r for r in _strict_json(out.stdout)["summary"]}
    assert rows["custom_op"]["status"] == "skipped"
    assert rows["custom_op"]["samples_per_s"] is None and rows["nn_relu"]["samples_per_s"] > 0


# --- other arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("argv, fragments", [
    (["scenario", "wide_deep", "--variants", "nn_relu,maximum,nn_relu", *TINY_WIDE],
     ["'nn_relu'", "given twice"]),
    (["scenario", "wide_deep", "--variants", "nn_relu", *TINY_WIDE, "--repeats", "1001"],
     ["repeats=1001", "1..1000"]),
    (["scenario", "resnet", "--strategy", "mirrored", "--variants", "nn_relu", *TINY_RESNET,
      "--steps", "1001"], ["steps=1001", "1..1000"]),
    (["scenario", "resnet", "--strategy", "mirrored", "--variants", "nn_relu", *TINY_RESNET,
      "--steps", "1", "--logical-cpus", "65"], ["logical_cpus=65", "1..64"]),
    (["scenario", "wide_deep", "--kind", "batch_sweep", "--variants", "nn_relu", *TINY_WIDE,
      "--batches", "2,2.5"], ["--batches", "2.5"]),
])
def test_absurd_scenario_arguments_are_refused(argv, fragments, capsys, data_dir):
    _refused(argv, capsys, data_dir, *fragments)


@pytest.mark.parametrize("flags, fragment", [
    (["--timeout", "nan"], "--timeout nan"),
    (["--timeout", "inf"], "--timeout inf"),
    (["--timeout", "-1"], "--timeout -1"),
])
def test_capture_refuses_a_timeout_that_is_no_limit(flags, fragment, capsys, data_dir):
    _refused(["capture", f"grpc://127.0.0.1:{free_port()}", *flags], capsys, data_dir,
             fragment, "seconds in (0, 86400]")


def test_capture_refuses_a_logdir_that_is_a_file(tmp_path, capsys, data_dir):
    file = tmp_path / "not_a_dir"
    file.write_text("x")
    _refused(["capture", f"grpc://127.0.0.1:{free_port()}", "--logdir", str(file)], capsys,
             data_dir, "--logdir", "not a directory")
    assert file.read_text() == "x"


def test_run_whose_every_case_failed_is_stored_failed_with_one_line(faulty_variants, capsys,
                                                                    data_dir):
    from profiling.cli.main import main

    code = main(["run", "--variants", "_test_raise", "--sizes", "100", "--modes", "eager",
                 "--threads", "1", "--repeats", "5", "--min-time", "0.001", "--no-trace",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err
    # a shared machine may add run's noisy-machine warning; the error is one line of its own
    errors = [line for line in err.splitlines() if not line.startswith("warning: run ")]
    assert len(errors) == 1 and errors[0].startswith("error: every case of run ") \
        and "raised on purpose" in errors[0], err
    with Store(data_dir) as store:
        assert store.list_runs()["status"].tolist() == ["failed"]
