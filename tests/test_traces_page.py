"""AppTest of the Traces page's failure paths and its diff tab: a converter that really
segfaults or hangs (a test hook in profiling/traces/convert_child.py) is a one-line error and
the app, running in this very process, goes on serving the next trace."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pandas as pd
import pytest
from helpers import FIXTURES, open_page, texts
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from profiling.traces.attribution import CPU_TIME_LABEL, UNATTRIBUTED

PYTORCH = FIXTURES / "pytorch_cpu_trace.json"
POOL = FIXTURES / "pool_attribution.json"


def _upload(at, name, content, index=0):
    at.get("file_uploader")[index].set_value((name, content, "application/octet-stream"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_crashing_or_hanging_converter_leaves_the_app_running(data_dir, monkeypatch):
    at = open_page("traces")
    monkeypatch.setenv("_RELU_LAB_INTERNAL_CONVERT_FAULT", "segfault")
    _upload(at, "crash.xplane.pb", b"\x0a\x04host")
    errors = texts(at.error)
    assert len(errors) == 1 and "crashed (SIGSEGV)" in errors[0] and "\n" not in errors[0]
    monkeypatch.setenv("_RELU_LAB_INTERNAL_CONVERT_FAULT", "hang")
    monkeypatch.setenv("RELU_LAB_CONVERT_TIMEOUT_S", "2")
    _upload(at, "hang.xplane.pb", b"\x0a\x04hang")
    errors = texts(at.error)
    assert len(errors) == 1 and "did not finish within 2 s" in errors[0]
    # the same process (the "server") reads the next trace as if nothing happened
    monkeypatch.delenv("_RELU_LAB_INTERNAL_CONVERT_FAULT")
    _upload(at, PYTORCH.name, PYTORCH.read_bytes())
    assert not at.error, texts(at.error)
    assert at.get("plotly_chart")


def test_the_page_shows_the_readers_own_message(data_dir):
    at = open_page("traces")
    bad = json.dumps({"traceEvents": [{"ph": "X", "name": "a", "pid": [1], "tid": 1, "ts": 0,
                                       "dur": 1}]}).encode()
    _upload(at, "pid.json", bad)
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Could not read pid.json: ")
    assert "pid" in errors[0] and "failed" not in errors[0]  # not the page's catch-all
    inf = json.dumps({"traceEvents": [{"ph": "X", "name": "a", "pid": 1, "tid": 1,
                                       "ts": 1e308, "dur": 1e308}]}).encode()
    _upload(at, "inf.json", inf)
    assert "out of range" in texts(at.error)[0]


def test_diff_tab_compares_two_uploads(data_dir):
    at = open_page("traces")
    a = json.loads(PYTORCH.read_text())
    b = json.loads(PYTORCH.read_text())
    for e in b["traceEvents"]:
        if e.get("name") == "aten::relu":
            e["dur"] = e["dur"] * 10  # B: a ReLU ten times slower
    # An "end: …" marker (XLA's async ops leave one) is not an op of its own.
    b["traceEvents"].append({**next(e for e in b["traceEvents"] if e.get("ph") == "X"),
                             "name": "end: convolution.1"})
    assert len(at.get("file_uploader")) == 3  # both sides' uploaders shown, no click first
    _upload(at, "a.json", json.dumps(a).encode(), index=1)
    _upload(at, "b.json", json.dumps(b).encode(), index=2)
    assert not at.error, texts(at.error)
    table = next(d for d in at.dataframe if "op" in d.value.columns and "calls A" in d.value.columns)
    ops = table.value
    assert not [c for c in ops.columns if "_" in c], list(ops.columns)
    assert ops.iloc[0]["op"] == "aten::relu" and ops.iloc[0]["B - A (µs)"] > 0
    assert ops.iloc[0]["calls A"] == ops.iloc[0]["calls B"]
    assert not ops["op"].str.startswith("end: ").any()
    shown = convert_arrow_bytes_to_pandas_df(table.proto.arrow_data.styler.display_values)
    words = {str(v) for v in shown.to_numpy().ravel()}
    assert not {"None", "nan"} & words and not [w for w in words if "e+" in w or "e-" in w]
    speedups = shown.iloc[:, -1]
    assert speedups.iloc[0].endswith("×") and float(speedups.iloc[0].rstrip("×")) < 0.2
    assert all(v == "–" or v.endswith("×") for v in speedups)
    assert all(" ms" in m.value or " µs" in m.value or " s" in m.value for m in at.metric
               if m.label.startswith("Duration"))


def test_where_the_time_went_shows_no_missing_cell(data_dir):
    """st.dataframe draws a null cell as 'None' whatever a Styler's na_rep says, so the table
    must hold no null: idle's thread time is the explicit text 'n/a'."""
    at = open_page("traces")
    _upload(at, PYTORCH.name, PYTORCH.read_bytes())
    raw, arrow = next((frame, d.proto.arrow_data) for d in at.dataframe
                      if "kind" in (frame := convert_arrow_bytes_to_pandas_df(
                          d.proto.arrow_data.data)).columns)
    shown = convert_arrow_bytes_to_pandas_df(arrow.styler.display_values)
    assert list(raw["kind"]) == ["compute", "communication", "memcpy", "other", "idle"]
    assert not raw.isna().any().any(), raw
    words = {str(v).strip().lower() for v in shown.to_numpy().ravel()}
    assert not words & {"none", "nan", "<na>", ""}, words
    idle = raw[raw["kind"] == "idle"].iloc[0]
    assert idle["thread µs"] == "n/a"
    assert float(raw[raw["kind"] == "compute"].iloc[0]["wall µs"]) > 0
    assert "idle is n/a" in " ".join(texts(at.caption))


def test_an_upload_opens_in_perfetto_served_by_the_dashboard(data_dir):
    at = open_page("traces")
    _upload(at, PYTORCH.name, PYTORCH.read_bytes())
    at.button(key="perfetto_open").click().run()
    assert not at.exception and not at.warning, texts(at.warning)
    (link,) = [b.proto.url for b in at.get("link_button") if "Perfetto" in b.proto.label]
    assert link.startswith("http://127.0.0.1:") and "#!/?url=" in link
    trace = urllib.parse.unquote(link.split("url=", 1)[1])
    with urllib.request.urlopen(trace, timeout=10) as reply:
        assert reply.read() == PYTORCH.read_bytes()


def test_perfetto_that_cannot_start_says_why_in_one_line(data_dir, monkeypatch, tmp_path):
    from profiling.presentation import perfetto_server

    monkeypatch.setattr(perfetto_server, "web_dist", lambda: tmp_path / "gone")
    at = open_page("traces")
    _upload(at, PYTORCH.name, PYTORCH.read_bytes())
    at.button(key="perfetto_open").click().run()
    warnings = texts(at.warning)
    assert len(warnings) == 1 and warnings[0].startswith("Perfetto is not available: ")
    assert "\n" not in warnings[0]
    assert at.get("plotly_chart")  # the rest of the page is drawn


def test_the_op_table_ranks_by_cpu_time_with_pool_work(data_dir):
    """tests/fixtures/pool_attribution.json (worked out in test_attribution.py): the per-op
    table is sorted by CPU time (own + pool work) and its caption says so."""
    at = open_page("traces")
    _upload(at, POOL.name, POOL.read_bytes())
    assert not at.error, texts(at.error)
    table = next(d.value for d in at.dataframe if "cpu (µs)" in d.value.columns)
    assert list(table["name"])[:4] == ["Relu", "Outer", "Inner", UNATTRIBUTED]
    assert table["cpu (µs)"].iloc[0] == pytest.approx(63)
    assert any(CPU_TIME_LABEL in c for c in texts(at.caption))


def test_a_generated_tf_cpu_trace_reads_as_trace_summary_does(data_dir, tmp_path):
    """A generated TF CPU trace (executor ops, Eigen pool Regions): the page's figures are
    summarize's, and the timeline draws at most the cap, chosen from the columns."""
    from profiling.bench.traces import generate_tf
    from profiling.traces import load_trace, summarize

    path = tmp_path / "tf_cpu.json"
    generate_tf(path, 8000)
    want = summarize(load_trace(path, keep_args=False), top=50)
    at = open_page("traces")
    _upload(at, path.name, path.read_bytes())
    assert not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Events"] == f"{want['event_count']:,}"
    table = next(d.value for d in at.dataframe if "cpu (µs)" in d.value.columns)
    assert list(table["name"]) == list(want["top_ops"]["name"])
    assert table["cpu (µs)"].to_numpy() == pytest.approx(want["top_ops"]["cpu_us"].to_numpy())
    drawing = next(c for c in texts(at.caption) if c.startswith("Drawing "))
    drawn = int(drawing.split()[1].replace(",", ""))
    assert 0 < drawn <= 3000 and f"of {want['event_count']:,} events" in drawing


def test_a_big_upload_is_read_without_args_and_summarized_alike(monkeypatch):
    """Past ARGS_KEPT_UP_TO_BYTES the page reads no args (the bench measures the memory this
    saves): the same events otherwise, the same summary and audit."""
    from profiling.presentation import explore

    data = PYTORCH.read_bytes()
    kept = explore.explore_trace(data, PYTORCH.name)
    assert (kept[0]["args"].astype(str) != "{}").any()
    monkeypatch.setattr(explore, "ARGS_KEPT_UP_TO_BYTES", len(data) - 1)
    dropped = explore.explore_trace(data, PYTORCH.name)
    assert set(dropped[0]["args"].astype(str)) == {"{}"}
    assert dropped[0].drop(columns="args").equals(kept[0].drop(columns="args"))
    pd.testing.assert_frame_equal(dropped[1]["top_ops"], kept[1]["top_ops"])
    # equal but for the last bits of sums taken in another order (the two readers code names
    # in different orders, so group-bys add in different orders)
    assert_close(dropped[2], kept[2])


def assert_close(a, b, rel: float = 1e-12) -> None:
    """a == b, floats within ``rel``, recursing into dicts and lists."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key], rel)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_close(x, y, rel)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=rel, nan_ok=True)
    else:
        assert a == b
