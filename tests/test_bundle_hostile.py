"""Hostile bundles: every crafted one exits 2 with one line and leaves the store exactly as it
was (the rows of every table and the trace files); good ones import whole."""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_run, store_state

from profiling.storage.bundle import BundleError, export_bundle, import_bundle
from profiling.storage.store import Store

REPO = Path(__file__).resolve().parents[1]
MARK = 123456.789  # replaced in the JSON text by tokens json.dumps cannot write (NaN, 1e309)


@pytest.fixture
def bundle(tmp_path) -> dict:
    with Store(tmp_path / "source") as source:
        run_id = make_run(source, "theirs", b"their-trace-bytes")
        return json.loads(json.dumps(export_bundle(source, [run_id])))


@pytest.fixture
def dest(backend) -> Store:
    """The store being imported into (SQLite or PostgreSQL), with a run of its own there."""
    store = Store(backend)
    make_run(store, "ours", b"our-own-trace-bytes")
    return store


def rename_run(obj: dict, new: str) -> None:
    old = obj["tables"]["runs"][0]["run_id"]
    for rows in obj["tables"].values():
        for row in rows:
            for key in ("run_id", "case_id"):
                if isinstance(row.get(key), str) and row[key].startswith(old):
                    row[key] = new + row[key][len(old):]


def set_trace_name(obj: dict, name: str) -> None:
    sha = obj["tables"]["traces"][0]["sha256"]
    obj["tables"]["traces"][0]["filename"] = name
    obj["trace_files"][sha]["filename"] = name


def case0(obj: dict) -> dict:
    return obj["tables"]["cases"][0]


def craft(kind: str, obj: dict) -> bytes:
    """The bundle file for one attack."""
    obj = copy.deepcopy(obj)
    t = obj["tables"]
    sha = t["traces"][0]["sha256"]
    edits = {
        "traversal_sha": lambda: case0(obj).update(trace_sha256="../../../x/secret"),
        "absolute_sha": lambda: case0(obj).update(trace_sha256="/tmp/x/secret"),
        "uppercase_sha": lambda: case0(obj).update(trace_sha256=sha.upper()),
        "traversal_filename": lambda: set_trace_name(obj, "../../evil.xplane.pb"),
        "traversal_trace_row_only": lambda: t["traces"][0].update(
            filename=f"{sha}/../../evil.xplane.pb"),
        "nul_filename": lambda: set_trace_name(obj, f"{sha}.xplane\x00.pb"),
        "overlong_filename": lambda: set_trace_name(obj, f"{sha}.{'a' * 300}"),
        "nul_label": lambda: t["runs"][0].update(label="a\x00b"),
        "overlong_run_id": lambda: rename_run(obj, "r" * 300),
        "traversal_run_id": lambda: rename_run(obj, "../../etc"),
        "median_fast": lambda: case0(obj).update(median_s="fast"),
        "numel_many": lambda: case0(obj).update(numel="many"),
        "nan_string": lambda: case0(obj).update(median_s="NaN"),
        "nan_token": lambda: case0(obj).update(median_s=MARK),
        "huge_1e309": lambda: case0(obj).update(gbps=MARK),
        "huge_int": lambda: case0(obj).update(numel=10**30),
        "idx_fraction": lambda: case0(obj).update(idx=1.5),
        "bool_threads": lambda: case0(obj).update(threads=True),
        "list_label": lambda: case0(obj).update(label=["a"]),
        "run_status": lambda: t["runs"][0].update(status="weird"),
        "case_status": lambda: case0(obj).update(status="great"),
        "env_not_json": lambda: t["runs"][0].update(environment_json="{not json"),
        # valid JSON of a shape no reader expects
        "spec_list": lambda: t["runs"][0].update(spec_json="[1]"),
        "env_list": lambda: t["runs"][0].update(environment_json="[1]"),
        "noise_string": lambda: t["runs"][0].update(noise_json='"busy"'),
        "machine_list": lambda: t["runs"][0].update(machine_json="[]"),
        "params_number": lambda: case0(obj).update(variant_params="3"),
        "claims_of_numbers": lambda: t["runs"][0].update(
            spec_json='{"kind": "claims", "claims": [1, 2]}'),
        "result_rows_not_objects": lambda: t["runs"][0].update(
            spec_json='{"kind": "scenario", "scenario": "batch", "results": {"summary": [1]}}'),
        "sample_string": lambda: t["samples"][0].update(seconds_per_call="1e-5"),
        "sample_null": lambda: t["samples"][0].update(seconds_per_call=None),
        "sample_list_case": lambda: t["samples"][0].update(case_id=["x"]),
        "missing_created_at": lambda: t["runs"][0].pop("created_at"),
        "duplicate_sample": lambda: t["samples"].append(dict(t["samples"][0])),
        "duplicate_run": lambda: t["runs"].append(dict(t["runs"][0])),
        "orphan_trace_file": lambda: obj["trace_files"].update(
            {"0" * 64: {"filename": "0" * 64 + ".xplane.pb", "data_b64": "aGk="}}),
        "trace_file_other_name": lambda: obj["trace_files"][sha].update(
            filename=f"{sha}.json.gz"),
        "calibration_nan_string": lambda: t["calibration"][0].update(peak_gbps="Infinity"),
    }
    edits[kind]()
    text = json.dumps(obj)
    if kind == "nan_token":
        text = text.replace(str(MARK), "NaN")
    elif kind == "huge_1e309":
        text = text.replace(str(MARK), "1e309")
    return text.encode()


CRAFTED = ["traversal_sha", "absolute_sha", "uppercase_sha", "traversal_filename",
           "traversal_trace_row_only", "nul_filename", "overlong_filename", "nul_label",
           "overlong_run_id", "traversal_run_id", "median_fast", "numel_many", "nan_string",
           "nan_token", "huge_1e309", "huge_int", "idx_fraction", "bool_threads", "list_label",
           "run_status", "case_status", "env_not_json", "spec_list", "env_list",
           "noise_string", "machine_list", "params_number", "claims_of_numbers",
           "result_rows_not_objects", "sample_string", "sample_null",
           "sample_list_case", "missing_created_at", "duplicate_sample", "duplicate_run",
           "orphan_trace_file", "trace_file_other_name", "calibration_nan_string"]


def cli_import(capsys, path: Path) -> tuple[int, list[str]]:
    from profiling.cli.main import main

    code = main(["import", str(path)])
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.strip()]


def assert_refused(capsys, dest: Store, path: Path) -> str:
    before = store_state(dest)
    code, lines = cli_import(capsys, path)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert store_state(dest) == before
    return lines[0]


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_bundle_exits_2_and_changes_nothing(kind, bundle, dest, tmp_path, capsys):
    path = tmp_path / f"{kind}.json"
    path.write_bytes(craft(kind, bundle))
    assert_refused(capsys, dest, path)


def test_the_same_bundle_gives_the_same_store_as_before(bundle, dest, tmp_path, capsys):
    """Control for the test above: the untouched bundle does import, traces included."""
    path = tmp_path / "good.json"
    path.write_bytes(json.dumps(bundle).encode())
    code, lines = cli_import(capsys, path)
    assert code == 0, lines
    run_id = bundle["run_ids"][0]
    case = dest.cases([run_id]).iloc[0]
    assert dest.trace_path(case.case_id).read_bytes() == b"their-trace-bytes"
    assert len(dest.fusion([run_id])) == 1 and len(dest.calibration(run_id)) == 1


def test_truncated_bundles_are_refused(bundle, dest, tmp_path, capsys):
    text = json.dumps(bundle).encode()
    for name, data in {"half.json": text[: len(text) // 2],
                       "half.json.gz": gzip.compress(text)[:200]}.items():
        (tmp_path / name).write_bytes(data)
        assert_refused(capsys, dest, tmp_path / name)


def test_colliding_run_and_case_ids_change_nothing(bundle, dest, tmp_path, capsys):
    path = tmp_path / "b.json"
    path.write_bytes(json.dumps(bundle).encode())
    assert cli_import(capsys, path)[0] == 0
    assert "already in the store" in assert_refused(capsys, dest, path)
    # a new run id whose cases reuse the ids of cases already stored
    other = copy.deepcopy(bundle)
    other["tables"]["runs"][0]["run_id"] = "20990101-000000-abcdef"
    for row in other["tables"]["cases"] + other["tables"]["calibration"] + \
            other["tables"]["fusion"]:
        row["run_id"] = "20990101-000000-abcdef"
    path.write_bytes(json.dumps(other).encode())
    assert_refused(capsys, dest, path)


def test_a_failed_import_removes_the_trace_files_it_wrote_but_not_others(bundle, dest):
    """Rows fail in the database after the trace files were written: only the files this
    import added go; a file the store already had (same content) stays."""
    bad = copy.deepcopy(bundle)
    bad["tables"]["samples"].append(dict(bad["tables"]["samples"][0]))
    before = store_state(dest)
    with pytest.raises(BundleError, match="(?i)unique"):
        import_bundle(dest, bad)
    assert store_state(dest) == before
    dest.put_trace(b"their-trace-bytes", "t.xplane.pb")  # now the store holds that trace
    before = store_state(dest)
    with pytest.raises(BundleError):
        import_bundle(dest, bad)
    assert store_state(dest) == before


def test_a_run_exported_mid_run_is_imported_as_incomplete(tmp_path, dest, capsys):
    with Store(tmp_path / "live") as live:
        run_id = make_run(live, "still going", b"live-trace", status="running")
        obj = json.loads(json.dumps(export_bundle(live, [run_id])))
    assert obj["tables"]["runs"][0]["status"] == "running"
    assert import_bundle(dest, obj) == [run_id]
    assert dest.run(run_id)["status"] == "incomplete"
    assert dest.list_runs().set_index("run_id").loc[run_id, "status"] == "incomplete"
    from profiling.cli.main import main

    assert main(["show", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "incomplete"


def test_import_of_dev_zero_and_a_fifo_refuses_at_once(dest, tmp_path, capsys):
    fifo = tmp_path / "bundle.fifo"
    os.mkfifo(fifo)  # no writer: a plain open() would block forever
    assert "not a regular file" in assert_refused(capsys, dest, fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "profiling", "import", "/dev/zero"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "not a regular file" in lines[0], lines


def test_a_bundle_over_the_size_limit_is_refused_before_reading(bundle, dest, tmp_path,
                                                                  capsys, monkeypatch):
    import profiling.storage.bundle

    path = tmp_path / "big.json"
    path.write_bytes(json.dumps(bundle).encode())
    monkeypatch.setattr(profiling.storage.bundle, "MAX_BUNDLE_BYTES", 100)
    assert "size limit" in assert_refused(capsys, dest, path)


@pytest.mark.parametrize("kind", ["nul_filename", "traversal_sha", "median_fast", "huge_1e309",
                                  "duplicate_sample"])
def test_compare_page_refuses_a_crafted_bundle_and_changes_nothing(kind, bundle, dest):
    from helpers import open_import, open_page, texts

    before = store_state(dest)
    at = open_import(open_page("compare"))
    at.get("file_uploader")[0].set_value((f"{kind}.json", craft(kind, bundle), "application/json"))
    at.run()
    assert not at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith(f"Could not import {kind}.json: bundle"), \
        errors
    assert "\n" not in errors[0]
    assert store_state(dest) == before
