"""XProf's own standalone UI (trace viewer, op profile, memory) for any .xplane.pb, offline.

`XprofServer` lays out a logdir (`plugins/profile/<run>/<host>.xplane.pb`, the layout xprof
reads), starts xprof's server on a free local port the first time a link is asked for, and stops
it with the process that owns it (the dashboard). When xprof cannot start, the error says why in
one line.

xprof's CLI has no bind-address option: its web server binds the wildcard address and its gRPC
worker service `0.0.0.0:<grpc_port>` (hard-coded in its C++). So xprof is started through
`LAUNCHER`, which binds the web server to `RELU_LAB_HOST` (loopback by default) and does not
start the gRPC worker service at all: xprof uses it only to map/reduce sessions of several
hosts, and this logdir holds one host per run, so every tool runs in-process.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from profiling import settings
from profiling.files import place

# Runs xprof as its child and stops it when the dashboard is gone, even after a SIGKILL that
# leaves no time for atexit.
WATCHDOG = """
import os, subprocess, sys, time
parent = int(sys.argv[1])
child = subprocess.Popen(sys.argv[2:])
while child.poll() is None:
    if os.getppid() != parent:
        child.terminate()
        break
    time.sleep(0.5)
sys.exit(child.wait())
"""
# `python -c LAUNCHER HOST xprof-args…`: xprof's own entry point with its web server bound to
# HOST and its gRPC worker service (0.0.0.0 in its C++, no option) left unstarted.
LAUNCHER = """
import sys
from xprof import server
from xprof.convert import _pywrap_profiler_plugin as plugin
host = sys.argv.pop(1)
if not (hasattr(server, "_get_wildcard_address") and hasattr(plugin, "start_grpc_server")):
    print("this xprof's server has no _get_wildcard_address/start_grpc_server to bind to "
          + host + " (ReLU Lab pins xprof==2.24.2)", flush=True)
    sys.exit(4)
server._get_wildcard_address = lambda port: host
plugin.start_grpc_server = lambda port, max_concurrent_requests: None
sys.exit(server.main(sys.argv[1:]))
"""
WILDCARDS = {"", "0.0.0.0", "::"}
RUN_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


class XprofUnavailable(RuntimeError):
    """xprof cannot serve this trace; str() is one line saying why."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def xprof_command(host: str) -> list[str]:
    """xprof's server, run by this Python through `LAUNCHER`, listening on ``host`` only."""
    if importlib.util.find_spec("xprof") is None:
        raise XprofUnavailable("xprof is not installed (pip install xprof)")
    return [sys.executable, "-c", LAUNCHER, host]


def browser_host(host: str) -> str:
    """The host a link on this machine uses for a server bound to ``host`` (a wildcard is
    reached on 127.0.0.1; an IPv6 address goes in brackets)."""
    if host in WILDCARDS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def run_name(text: str) -> str:
    """A run directory name made of safe characters."""
    return RUN_NAME_RE.sub("_", text).strip("._")[:80] or "trace"


class XprofServer:
    """One xprof server over one logdir; `link(...)` adds a trace and returns its URL."""

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.logdir = Path(logdir)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.host = settings.serve_host()
        self._lock = threading.Lock()
        self._log = None

    def add_trace(self, run: str, source: str | os.PathLike | bytes, host: str = "host") -> str:
        """Place a trace at plugins/profile/<run>/<host>.xplane.pb (a hard link or copy of a
        stored file, or the bytes of an upload); returns the run name."""
        run = run_name(run)
        target = self.logdir / "plugins" / "profile" / run / f"{run_name(host)}.xplane.pb"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            place(source, target)
        return run

    def start(self) -> str:
        """Start xprof if it is not running; its base URL. XprofUnavailable if it cannot."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                return self.url
            self.logdir.mkdir(parents=True, exist_ok=True)
            port, grpc_port = _free_port(), _free_port()
            log_path = self.logdir / "xprof_server.log"
            self._log = open(log_path, "ab")  # noqa: SIM115 - kept open for the server's life
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", WATCHDOG, str(os.getpid()),
                     *xprof_command(self.host), "--logdir", str(self.logdir),
                     "--port", str(port), "--grpc_port", str(grpc_port),
                     "--worker_service_address", f"{browser_host(self.host)}:{grpc_port}",
                     "--hide_capture_profile_button"],
                    stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True)
            except OSError as e:
                raise XprofUnavailable(f"xprof did not start: {e.strerror or e}") from None
            self.port = port
            atexit.register(self.stop)
            timeout_s = settings.xprof_start_timeout_s()
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise XprofUnavailable(f"xprof exited at start (code {self.proc.returncode})"
                                           f": {_last_line(log_path)}")
                try:
                    with urllib.request.urlopen(self.url, timeout=2):
                        return self.url
                except OSError:
                    time.sleep(0.5)
            self.stop()
            raise XprofUnavailable(f"xprof did not answer on {self.url} within {timeout_s:g} s "
                                   "(RELU_LAB_XPROF_START_TIMEOUT_S); it was stopped")

    @property
    def url(self) -> str:
        return f"http://{browser_host(self.host)}:{self.port}/"

    def link(self, run: str, source: str | os.PathLike | bytes) -> str:
        """URL of XProf's UI for one trace (started on demand)."""
        name = self.add_trace(run, source)
        return f"{self.start()}?run={name}"

    def stop(self) -> None:
        """Stop the server (its whole process group)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][:200] if lines else "no output"
