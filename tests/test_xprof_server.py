"""XprofServer: the logdir layout xprof reads, and a one-line reason when it cannot start."""

from __future__ import annotations

import sys
import urllib.request

import pytest
from sockets import assert_loopback_only

from profiling.presentation import xprof_server
from profiling.presentation.xprof_server import XprofServer, XprofUnavailable


def test_traces_are_laid_out_as_xprof_reads_them(tmp_path):
    stored = tmp_path / "abc.xplane.pb"
    stored.write_bytes(b"xspace")
    server = XprofServer(tmp_path / "logdir")
    run = server.add_trace("run 1/case:7", stored)
    assert run == "run_1_case_7"
    assert (tmp_path / "logdir/plugins/profile/run_1_case_7/host.xplane.pb").read_bytes() \
        == b"xspace"
    assert server.add_trace("upload", b"bytes") == "upload"
    assert (tmp_path / "logdir/plugins/profile/upload/host.xplane.pb").read_bytes() == b"bytes"


def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(xprof_server, "xprof_command", lambda host: [
        sys.executable, "-c", "import sys; print('port already taken'); sys.exit(3)"])
    server = XprofServer(tmp_path / "logdir")
    with pytest.raises(XprofUnavailable) as info:
        server.link("run", b"x")
    message = str(info.value)
    assert "\n" not in message and "code 3" in message and "port already taken" in message


def test_every_socket_xprof_opens_is_on_loopback_only(tmp_path):
    """The UI port and whatever else the xprof child listens on (its gRPC worker port by
    default) are bound to loopback, and a connection on another address of this machine is
    refused."""
    server = XprofServer(tmp_path / "logdir")
    try:
        url = server.start()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200
        assert_loopback_only(server.proc.pid, {server.port})
    finally:
        server.stop()
    assert server.proc is None


def test_a_server_that_never_answers_is_stopped_at_the_start_up_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("RELU_LAB_XPROF_START_TIMEOUT_S", "1.5")
    monkeypatch.setattr(xprof_server, "xprof_command", lambda host: [
        sys.executable, "-c", "import time; time.sleep(60)"])
    server = XprofServer(tmp_path / "logdir")
    with pytest.raises(XprofUnavailable) as info:
        server.start()
    message = str(info.value)
    assert "\n" not in message and "1.5 s" in message
    assert "RELU_LAB_XPROF_START_TIMEOUT_S" in message
    assert server.proc is None
