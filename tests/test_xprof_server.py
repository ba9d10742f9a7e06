"""XprofServer: the logdir layout xprof reads, and a one-line reason when it cannot start."""

from __future__ import annotations

import sys

import pytest

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
    monkeypatch.setattr(xprof_server, "xprof_command", lambda: [
        sys.executable, "-c", "import sys; print('port already taken'); sys.exit(3)"])
    server = XprofServer(tmp_path / "logdir")
    with pytest.raises(XprofUnavailable) as info:
        server.link("run", b"x")
    message = str(info.value)
    assert "\n" not in message and "code 3" in message and "port already taken" in message
