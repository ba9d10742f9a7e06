"""Strict, quiet front ends: an empty flag value is an error (never the default), and commands
that import TensorFlow keep its start-up log lines off stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_run, open_import, open_page, texts

from profiling.storage.store import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [
    ["run", "--variants", ""], ["run", "--sizes", ""], ["run", "--sizes="],
    ["run", "--shapes", " "], ["run", "--dtypes", ""], ["run", "--modes", ""],
    ["run", "--threads", ""], ["run", "--devices", ""], ["run", "--passes", ""],
    ["scenario", "resnet", "--variants", ""], ["scenario", "resnet", "--devices", ""],
    ["scenario", "wide_deep", "--hidden", ""], ["capture", "grpc://127.0.0.1:1", "--label", ""],
    ["export", "latest", "-o", ""], ["trace-summary", "x.json", "--max-bytes", ""],
])
def test_an_empty_flag_value_is_an_error(argv, capsys, tmp_path, monkeypatch):
    from profiling.cli.main import main

    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "empty value" in err, err
    assert not (tmp_path / "relu_lab.sqlite").exists()  # nothing started


def test_export_html_prints_no_tensorflow_log_line(tmp_path):
    data = tmp_path / "data"
    with Store(data) as store:
        run_id = make_run(store, "html", b"t")
    env = {**os.environ, "RELU_LAB_DATA": str(data), "PYTHONPATH": str(REPO)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    out = subprocess.run([sys.executable, "-m", "profiling", "export", run_id, "--format", "html",
                          "-o", str(tmp_path / "r.html")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [f"wrote {tmp_path / 'r.html'}"]


def test_compare_page_refuses_an_oversized_bundle_before_reading_it(tmp_path, monkeypatch):
    import profiling.storage.bundle

    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path))
    monkeypatch.setattr(profiling.storage.bundle, "MAX_BUNDLE_BYTES", 1000)
    at = open_import(open_page("compare"))
    at.get("file_uploader")[0].set_value(("big.json", b" " * 5000, "application/json"))
    at.run()
    assert not at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Could not import big.json") \
        and "size limit" in errors[0], errors
