"""trace-summary, audit and trace-diff: one-line refusals, JSON without Infinity/NaN, and the
audit/diff contracts, on hand-written and real (PyTorch) traces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from profiling.cli.main import main

REPO_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _strict_json(text):
    def refuse(token):
        raise AssertionError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _write(tmp_path, name, events):
    p = tmp_path / name
    p.write_text(json.dumps({"traceEvents": events}))
    return p


@pytest.mark.parametrize("command", ["trace-summary", "audit"])
def test_pid_list_is_a_one_line_error(capsys, tmp_path, command):
    p = _write(tmp_path, "pid.json", [{"ph": "X", "name": "a", "pid": [1], "tid": 1, "ts": 0,
                                       "dur": 1}])
    code, out, err = _run(capsys, command, str(p))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "pid" in err and "TypeError" not in err


def test_huge_timestamps_never_print_infinity(capsys, tmp_path):
    p = _write(tmp_path, "inf.json", [{"ph": "X", "name": "a", "pid": 1, "tid": 1,
                                       "ts": 1e308, "dur": 1e308}])
    code, out, err = _run(capsys, "trace-summary", str(p), "--json")
    assert code == 2 and "out of range" in err and "Infinity" not in out
    # a trace that is fine: the ratio is null (no communication), never Infinity/NaN
    ok = _write(tmp_path, "ok.json", [{"ph": "X", "name": "Relu", "cat": "cpu_op", "pid": 1,
                                       "tid": 1, "ts": 1.7e15, "dur": 5}])
    code, out, _ = _run(capsys, "trace-summary", str(ok), "--json")
    s = _strict_json(out)
    assert code == 0 and s["compute_comm_ratio"] is None and s["breakdown"]["compute_us"] == 5


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_devices_and_fifos_are_refused_at_once(tmp_path, path):
    if path == "fifo":
        path = str(tmp_path / "trace.json")
        os.mkfifo(path)
    for command in ("trace-summary", "audit"):
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "profiling", command, path],
                              capture_output=True, text=True, timeout=60, env=REPO_ENV)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1
        assert "not a regular file" in proc.stderr
        assert time.monotonic() - start < 30


def test_pytorch_trace_summary_and_audit(capsys, pytorch_trace):
    code, out, _ = _run(capsys, "trace-summary", str(pytorch_trace), "--json")
    s = _strict_json(out)
    assert code == 0 and s["compute_comm_ratio"] is None  # CPU only: nothing crosses devices
    assert s["top_ops"][0]["name"] == "aten::mkldnn_convolution"
    busy = s["busy_us"]
    assert s["breakdown"]["compute_us"] > busy / 2
    code, out, _ = _run(capsys, "audit", str(pytorch_trace), "--json")
    a = _strict_json(out)
    assert code == 0 and set(a) == {"activations", "activation_pct", "unfused_pct", "steps", "time",
                                    "advice", "recommendations"}
    relu = [r for r in a["activations"] if r["op"] == "aten::relu"]
    assert relu and relu[0]["kind"] == "relu" and relu[0]["fused"] is False
    assert set(relu[0]) == {"scope", "op", "kind", "fused", "confidence", "occurrences",
                            "self_us", "pct", "kernel_us", "backward_us", "ops"}
    assert relu[0]["confidence"] == "exact" and relu[0]["backward_us"] > 0  # ReluBackward0
    assert a["unfused_pct"] == pytest.approx(sum(r["pct"] for r in a["activations"]
                                                 if r["fused"] is False))
    # TF fusion advice does not fit a PyTorch trace, and this lab measured none for PyTorch
    assert a["advice"] == [] and a["recommendations"] == []


def test_trace_diff_sorted_by_impact(capsys, tmp_path):
    a = _write(tmp_path, "a.json", [
        {"ph": "X", "name": "conv", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 0, "dur": 50},
        {"ph": "X", "name": "relu", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 60, "dur": 10}])
    b = _write(tmp_path, "b.json", [
        {"ph": "X", "name": "conv", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 0, "dur": 52},
        {"ph": "X", "name": "relu", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 60, "dur": 30},
        {"ph": "X", "name": "relu", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 95, "dur": 5},
        {"ph": "X", "name": "add", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 100, "dur": 1}])
    code, out, _ = _run(capsys, "trace-diff", str(a), str(b), "--json")
    d = _strict_json(out)
    assert code == 0
    assert [o["name"] for o in d["ops"]] == ["relu", "conv", "add"]
    relu = d["ops"][0]
    assert (relu["self_us_a"], relu["self_us_b"], relu["delta_us"]) == (10, 35, 25)
    assert relu["delta_occurrences"] == 1 and relu["ratio"] == 3.5
    assert d["ops"][2]["ratio"] is None  # new in B: no ratio, and no NaN in the JSON
    kinds = {r["kind"]: r for r in d["breakdown"]}
    assert kinds["compute"]["a_us"] == 60 and kinds["compute"]["b_us"] == 88
    code, out, _ = _run(capsys, "trace-diff", str(a), str(b))
    assert code == 0 and "relu" in out and "3.50x" in out
    code, _, err = _run(capsys, "trace-diff", str(a), "/dev/zero")
    assert code == 2 and err.count("\n") == 1
