"""Remote capture from real TF processes (profiler server on a free 127.0.0.1 port), its error
paths, the CLI command and the Capture page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import assert_one_run_writer, silent_server, start_target, wait_ready

from profiling.experiments.capture import CaptureError, capture, parse_addresses
from profiling.process import free_port

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def targets():
    """(busy address, idle address): two TF processes running profiler servers."""
    started = [start_target("busy"), start_target("idle")]
    try:
        for proc, _ in started:
            wait_ready(proc)
        yield started[0][1], started[1][1]
    finally:
        for proc, _ in started:
            proc.kill()
            proc.wait(timeout=10)


def test_capture_one_worker_gives_a_stored_xplane(targets, tmp_path):
    from profiling.storage.store import Store
    from profiling.traces import load_trace

    busy, _ = targets
    store = Store(tmp_path / "data")
    result = capture(busy, 300, logdir=str(tmp_path / "logs"), store=store)
    (row,) = result.traces.to_dict("records")
    assert row["status"] == "ok" and row["event_count"] > 0 and row["compute_us"] > 0
    assert row["path"].endswith("127.0.0.1_" + busy.rsplit(":", 1)[1] + ".xplane.pb")
    assert result.top_ops["name"].str.contains("MatMul").any()
    stored = store.trace_path(row["case_id"])
    assert stored is not None and len(load_trace(stored).events) == row["event_count"]
    cases = assert_one_run_writer(store, result.run_id, "capture")
    assert list(cases["mode"]) == ["remote"] and list(cases["label"]) == [busy]
    assert store.op_stats(row["case_id"])["op_type"].str.contains("MatMul").any()


def test_capture_two_workers_at_once_marks_the_idle_one_empty(targets):
    busy, idle = targets
    result = capture(f"{busy},{idle}", 300)
    by_address = result.traces.set_index("address")
    assert by_address.loc[busy, "status"] == "ok"
    assert by_address.loc[idle, "status"] == "empty"
    assert "no trace events" in by_address.loc[idle, "reason"]
    assert set(result.top_ops["address"]) == {busy}


def test_capture_with_no_events_is_a_one_line_error(targets):
    _, idle = targets
    with pytest.raises(CaptureError, match="no trace events") as info:
        capture(idle, 200)
    assert str(info.value).startswith(idle) and "\n" not in str(info.value)


@pytest.mark.parametrize("address", ["127.0.0.1:6009", "http://127.0.0.1:6009",
                                     "grpc://127.0.0.1", "grpc://127.0.0.1:0",
                                     "grpc://127.0.0.1:70000", "grpc://a b:1", "", " , "])
def test_bad_address_string(address):
    with pytest.raises(CaptureError, match="address") as info:
        parse_addresses(address)
    assert "\n" not in str(info.value)


def test_refused_connection_is_reported_before_any_capture():
    port = free_port()  # nothing listens there now
    with pytest.raises(CaptureError, match="connection refused"):
        capture(f"grpc://127.0.0.1:{port}", 100)


def test_a_server_that_never_answers_cannot_hang_the_capture(monkeypatch):
    monkeypatch.setenv("RELU_LAB_CAPTURE_TIMEOUT_S", "3")  # beyond the capture's duration
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(CaptureError) as info:
            capture(f"grpc://127.0.0.1:{port}", 100)
        elapsed = time.monotonic() - started
    message = str(info.value)
    assert "\n" not in message and elapsed < 3.1 + 5, elapsed
    assert f"grpc://127.0.0.1:{port}" in message and "RELU_LAB_CAPTURE_TIMEOUT_S" in message


def test_cli_capture(targets, capsys):
    from profiling.cli.scenario import main

    busy, _ = targets
    assert main(["capture", busy, "--duration-ms", "200", "--no-store", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["traces"][0]["status"] == "ok" and out["run_id"] is None
    assert main(["capture", "grpc://nohost", "--no-store"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad address") and err.count("\n") == 1
    assert main(["capture", f"grpc://127.0.0.1:{free_port()}", "--no-store"]) == 1
    assert "connection refused" in capsys.readouterr().err
    assert main(["capture", busy, "--duration-ms", "0", "--no-store"]) == 2


def capture_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app" / "views" / "capture.py"), default_timeout=90)
    at.run()
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def second_busy():
    """A second busy worker, so the page captures two live processes at once."""
    proc, address = start_target("busy")
    try:
        wait_ready(proc)
        yield address
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_capture_page_draws_two_workers_and_stores_them(targets, second_busy, data_dir):
    from profiling.storage.store import Store

    busy, _ = targets
    at = capture_page()
    at.text_input(key="cap_addresses").set_value(f"{busy},{second_busy}")
    at.number_input(key="cap_duration").set_value(300)
    at.button(key="cap_run").click().run()
    assert not at.exception and not at.error and not at.warning
    assert len(at.get("plotly_chart")) == 2
    (saved,) = [s.value for s in at.success if "Saved as run" in s.value]
    run_id = saved.split("Saved as run ")[1].split(";")[0]
    cases = Store().cases([run_id])
    assert len(cases) == 2 and (cases.status == "ok").all()  # one stored trace per worker
    assert all(Store().trace_path(c) is not None for c in cases.case_id)


def test_capture_page_shows_one_line_for_a_refused_address(data_dir):
    at = capture_page()
    at.text_input(key="cap_addresses").set_value(f"grpc://127.0.0.1:{free_port()}")
    at.button(key="cap_run").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "connection refused" in at.error[0].value
    assert "\n" not in at.error[0].value and not at.get("plotly_chart")
