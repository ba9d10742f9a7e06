"""Viewer links as the browser must reach them: unchanged on loopback, the browser's own host
(with the viewer's port) when the dashboard is served to the network, and the page's warning."""

from __future__ import annotations

import pytest
from helpers import FIXTURES, open_page, texts

from app.viewer_links import (
    OFFLINE_TOOLS,
    browser_hostname,
    browser_link,
    exposure_warning,
    is_loopback,
)

PERFETTO = ("http://127.0.0.1:40123/#!/?url=http://127.0.0.1:40123/traces/step-1a2b.json")


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
    ("192.168.1.5", False), ("lab.example", False),
])
def test_loopback_is_told_from_a_network_address(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("header, hostname", [
    ("lab.example:8501", "lab.example"), ("10.0.0.7", "10.0.0.7"), ("[fe80::1]:8501", "[fe80::1]"),
    (None, None), ("", None), ("evil.example/path", None), ("user@host:1", None),
])
def test_host_header_gives_the_hostname(header, hostname):
    assert browser_hostname(header) == hostname


def test_network_links_use_the_browsers_host_and_the_viewers_port():
    assert browser_link("http://127.0.0.1:6006/", "lab.example:8501", "0.0.0.0") == \
        "http://lab.example:6006/"
    # Perfetto's link carries the trace's URL: both point at the browser's host.
    assert browser_link(PERFETTO, "10.0.0.7:8501", "0.0.0.0") == PERFETTO.replace(
        "127.0.0.1", "10.0.0.7")
    assert browser_link("http://192.168.1.5:7001/x", "[fe80::1]:8501", "192.168.1.5") == \
        "http://[fe80::1]:7001/x"


def test_loopback_links_and_links_without_a_host_header_are_unchanged():
    assert browser_link(PERFETTO, "lab.example:8501", "127.0.0.1") == PERFETTO
    assert browser_link(PERFETTO, None, "0.0.0.0") == PERFETTO
    assert browser_link("not a url", "lab.example:8501", "0.0.0.0") == "not a url"


def test_the_warning_is_said_only_off_loopback():
    assert exposure_warning("127.0.0.1", "localhost:8501") is None
    text = exposure_warning("0.0.0.0", "lab.example:8501")
    assert "readable by anyone who can reach lab.example" in text and "\n" not in text


def test_traces_page_warns_when_served_to_the_network(data_dir, monkeypatch):
    trace = FIXTURES / "pytorch_cpu_trace.json"
    monkeypatch.setenv("RELU_LAB_HOST", "0.0.0.0")
    at = open_page("traces")
    at.get("file_uploader")[0].set_value((trace.name, trace.read_bytes(), "application/json"))
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    warnings = texts(at.warning)
    assert len(warnings) == 1 and "traces opened in XProf or Perfetto are readable" in warnings[0]
    assert OFFLINE_TOOLS in texts(at.caption)
    monkeypatch.setenv("RELU_LAB_HOST", "127.0.0.1")
    at.run()
    assert not at.warning, texts(at.warning)

