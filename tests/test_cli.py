"""`python -m profiling` as a user runs it: exit codes, JSON fields, one-line errors."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from profiling.storage.store import Store

REPO = Path(__file__).resolve().parents[1]
CASE_FIELDS = {"variant", "shape", "dtype", "device", "mode", "pass", "status", "median_s",
               "ci95_s", "gbps", "utilization", "page_faults_per_call", "reason"}


def cli(*args: str, data: Path, check: int | None = 0, **env: str):
    e = {**os.environ, "RELU_LAB_DATA": str(data), "PYTHONPATH": str(REPO), **env}
    out = subprocess.run([sys.executable, "-m", "profiling", *args], cwd=REPO, env=e,
                         capture_output=True, text=True, timeout=300)
    if check is not None:
        assert out.returncode == check, (out.returncode, out.stdout[-2000:], out.stderr[-2000:])
    return out


def assert_one_line_error(out):
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "error" in lines[0], out.stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tmp_path_factory.mktemp("cli_data")


@pytest.fixture(scope="module")
def run(data):
    out = cli("run", "--variants", "nn_relu,int8,leaky:alpha=0.2", "--sizes", "1000",
              "--modes", "eager", "--threads", "1", "--min-time", "0.002", "--fusion", "--json",
              data=data)
    assert "[" in out.stderr  # progress bar on stderr
    return json.loads(out.stdout)


def test_run_json(run):
    assert run["status"] == "complete" and run["run_id"]
    by = {c["label"]: c for c in run["cases"]}
    assert set(by) == {"nn_relu", "int8", "leaky(alpha=0.2)"}
    for c in run["cases"]:
        assert set(c) >= CASE_FIELDS
    assert by["nn_relu"]["status"] == "ok" and by["nn_relu"]["median_s"] > 0
    assert by["nn_relu"]["gbps"] > 0 and by["nn_relu"]["ci95_s"] >= 0
    assert by["int8"]["status"] == "skipped" and "float32" in by["int8"]["reason"]
    leaky = by["leaky(alpha=0.2)"]  # timed interleaved with nn_relu, the baseline
    assert leaky["speedup"] == pytest.approx(1 / leaky["ratio_to_baseline"])
    assert leaky["speedup_ci95_low"] == pytest.approx(1 / leaky["ratio_ci95_high"])
    assert leaky["speedup_ci95_high"] == pytest.approx(1 / leaky["ratio_ci95_low"])
    assert by["int8"]["speedup"] is None  # nothing measured, nothing made up
    fusion = {(f["variant"], f["block"]): f for f in run["fusion"]}
    assert fusion[("nn_relu", "conv")]["fused"] is True
    leaky_conv = fusion[("leaky(alpha=0.2)", "conv")]
    assert leaky_conv["speedup"] == pytest.approx(1 / leaky_conv["time_vs_fused"])
    assert leaky_conv["speedup_ci95_low"] == pytest.approx(1 / leaky_conv["ratio_ci95_high"])
    assert fusion[("leaky(alpha=0.2)", "conv")]["fused"] is False
    assert fusion[("nn_relu", "xla")]["compiled"] is True
    assert "float32" in fusion[("int8", "dense")]["reason"]


def test_calibrate(data):
    out = json.loads(cli("calibrate", "--threads", "1", "--json", data=data).stdout)
    assert out["peak_gbps"] > 0 and out["method"] in ("bandwidth_probe", "numpy_copy")


def test_list_show(run, data):
    runs = json.loads(cli("list", "--json", data=data).stdout)["runs"]
    assert run["run_id"] in [r["run_id"] for r in runs]
    shown = json.loads(cli("show", run["run_id"][:15], "--json", data=data).stdout)
    assert shown["run_id"] == run["run_id"] and "tf_version" in shown["environment"]
    assert len(shown["cases"]) == 3 and shown["calibration"][0]["peak_gbps"] > 0
    text = cli("show", "latest", data=data).stdout
    assert "nn_relu" in text and "GB/s" in text
    assert "speedup [CI95]" in text and "1.00× [1.00, 1.00]" in text  # nn_relu vs itself
    listed = cli("list", data=data).stdout
    assert run["run_id"] in listed and "noise_verdict" in listed
    assert "{" not in listed  # a table for people: no raw JSON column


def test_compare_exit_codes(run, data):
    assert cli("compare", run["run_id"], run["run_id"], data=data).returncode == 0
    store = Store(data)
    slow = store.create_run({}, "slower", 3)
    for c in store.cases([run["run_id"]]).to_dict("records"):
        c = {**c, "run_id": slow, "case_id": c["case_id"] + "-slow"}
        if c["status"] == "ok":
            c.update(median_s=c["median_s"] * 3, ci95_low_s=c["ci95_high_s"] * 2,
                     ci95_high_s=c["ci95_high_s"] * 4)
        store.add_case(c)
    store.finish_run(slow, "complete")
    out = cli("compare", run["run_id"], slow, "--json", data=data, check=1)
    res = json.loads(out.stdout)
    assert res["regressions"] == 2
    assert all(c["ratio"] == pytest.approx(3) for c in res["cases"])
    assert all(c["speedup"] == pytest.approx(1 / 3) and c["speedup_ci95_high"] ==
               pytest.approx(1 / c["ratio_low"]) for c in res["cases"])
    assert cli("compare", run["run_id"], slow, "--max-regression", "500%",
               data=data).returncode == 0
    text = cli("compare", run["run_id"], slow, data=data, check=1).stdout
    assert "REGRESSION" in text and "speedup B vs A" in text and "0.333×" in text
    assert_one_line_error(cli("compare", run["run_id"], slow, "--max-regression", "lots",
                              data=data, check=None))


def test_export_import_round_trip(run, data, tmp_path):
    bundle = tmp_path / "b.json"
    cli("export", run["run_id"], "--format", "json", "-o", str(bundle), data=data)
    csv = tmp_path / "b.csv"
    cli("export", run["run_id"], "--format", "csv", "-o", str(csv), data=data)
    assert csv.read_text().splitlines()[0].startswith("run_id,case_id,variant")
    other = tmp_path / "other"
    out = json.loads(cli("import", str(bundle), "--json", data=other).stdout)
    assert out["run_ids"] == [run["run_id"]]
    a = Store(data).cases([run["run_id"]])
    b = Store(other).cases([run["run_id"]])
    assert a.equals(b)
    case = a[a.status == "ok"].case_id.iloc[0]
    assert Store(other).trace_path(case).read_bytes() == Store(data).trace_path(case).read_bytes()
    assert_one_line_error(cli("import", str(bundle), data=other, check=None))  # already there
    # the bundle's traces summarize too
    s = json.loads(cli("trace-summary", str(bundle), "--json", data=data).stdout)
    assert s["source"] == "bundle" and s["event_count"] > 0


def test_failed_import_writes_nothing(run, data, tmp_path):
    bundle = tmp_path / "b.json"
    cli("export", run["run_id"], "-o", str(bundle), data=data)
    obj = json.loads(bundle.read_text())
    obj["tables"]["samples"].append(dict(obj["tables"]["samples"][0]))  # duplicate key
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj))
    empty = tmp_path / "empty"
    assert_one_line_error(cli("import", str(bad), data=empty, check=None))
    store = Store(empty)
    assert store.list_runs().empty
    assert store.count("cases") == 0
    for name, content in {"foreign.json": b'{"a": 1}', "junk.json": os.urandom(100)}.items():
        (tmp_path / name).write_bytes(content)
        assert_one_line_error(cli("import", str(tmp_path / name), data=empty, check=None))


def test_export_html(run, data, tmp_path):
    out = cli("export", run["run_id"], "--format", "html", "-o", str(tmp_path / "r.html"),
              data=data, check=None)
    assert out.returncode == 0, out.stderr
    assert "<html" in (tmp_path / "r.html").read_text().lower()


def test_trace_summary_tf_and_pytorch(run, data, pytorch_trace):
    store = Store(data)
    ok = [c for c in run["cases"] if c["status"] == "ok"][0]
    xplane = store.trace_path(ok["case_id"])
    s = json.loads(cli("trace-summary", str(xplane), "--json", data=data).stdout)
    assert s["source"] == "xplane" and s["top_ops"][0]["name"] == "Relu"
    assert set(s["breakdown"]) == {"compute_us", "memcpy_us", "collective_us", "idle_us",
                                   "other_us"}
    pt = json.loads(cli("trace-summary", str(pytorch_trace), "--json", data=data).stdout)
    assert pt["event_count"] > 100 and pt["top_ops"][0]["name"].startswith("aten::")
    assert pt["breakdown"]["compute_us"] > 0
    text = cli("trace-summary", str(pytorch_trace), "--top", "5", data=data).stdout
    assert "aten::mkldnn_convolution" in text and "breakdown" in text


def test_bad_input_one_line_exit_2(data, tmp_path):
    """Subprocesses: the real stderr a user sees, TF start-up noise included."""
    (tmp_path / "r.xplane.pb").write_bytes(os.urandom(2048))
    assert_one_line_error(cli("trace-summary", str(tmp_path / "r.xplane.pb"), data=data,
                              check=None))
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * (32 << 20)))
    out = cli("trace-summary", str(bomb), "--max-bytes", str(4 << 20), data=data, check=None)
    assert_one_line_error(out)
    assert "exceeds" in out.stderr
    assert_one_line_error(cli("run", "--modes", "jit", data=data, check=None))
    assert_one_line_error(cli("run", "--bogus", data=data, check=None))


def _main(capsys, *argv):
    from profiling.cli.main import main

    code = main(list(argv))
    return code, capsys.readouterr()


def test_bad_input_in_process(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RELU_LAB_DATA", str(data))
    files = {"f.json": b'{"not": "a trace"}', "t.json.gz": gzip.compress(b'{"traceEvents": []}')[:20],
             "e.json": b"", "x.json": b"\xff\xfe{"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    cases = [("trace-summary", str(tmp_path / n)) for n in files] + [
        ("trace-summary", str(tmp_path / "missing.json")), ("show", "no-such-run"),
        ("compare", "no-such-run", "latest"), ("export", "nope", "-o", str(tmp_path / "o")),
        ("run", "--variants", "nope"), ("run", "--sizes", "ten"), ("run", "--threads", "x"),
        ("run", "--shapes", "1000000x1000000x100"), ("run", "--variants", "leaky:alpha=5"),
        ("import", str(tmp_path / "missing.json")), ("calibrate", "--threads", "-2"),
        ("calibrate", "--device", "TPU:7", "--threads", "1"),
        ("trace-summary", str(tmp_path / "f.json"), "--top", "0"),
        ("trace-summary", str(tmp_path / "f.json"), "--max-bytes", "-1")]
    for argv in cases:
        code, out = _main(capsys, *argv)
        lines = [ln for ln in out.err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (argv, out.err)
    gz = tmp_path / "small.json.gz"
    gz.write_bytes(gzip.compress(b'{"traceEvents": []}' + b" " * 4096))
    monkeypatch.delenv("RELU_LAB_MAX_TRACE_BYTES", raising=False)
    assert _main(capsys, "trace-summary", str(gz), "--max-bytes", "1000")[0] == 2
    assert "RELU_LAB_MAX_TRACE_BYTES" not in os.environ  # the cap was for that command only
    assert _main(capsys, "trace-summary", str(gz))[0] == 0


@pytest.mark.parametrize("cmd", ["", "run", "list", "show", "compare", "export", "import",
                                 "trace-summary", "calibrate"])
def test_help(cmd, capsys):
    from profiling.cli.main import main

    with pytest.raises(SystemExit) as e:
        main([*([cmd] if cmd else []), "--help"])
    assert e.value.code == 0 and "usage:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main([*([cmd] if cmd else []), "--no-such-flag"])
    assert e.value.code == 2


def test_the_installed_command_works_from_any_directory(tmp_path):
    """`make` installs the project (pip install -e .): relu-lab and python -m profiling then
    run from / with no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["RELU_LAB_DATA"] = str(tmp_path)
    script = Path(sys.executable).parent / "relu-lab"
    for command, shows in (([str(script), "--help"], "compare"),
                           ([sys.executable, "-m", "profiling", "list"], "(none)")):
        out = subprocess.run(command, cwd="/", env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0 and shows in out.stdout, (command, out.stderr[-2000:])
