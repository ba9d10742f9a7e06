"""Every user-facing `RELU_LAB_*` environment variable, read here and nowhere else in profiling/.

`SETTINGS` lists them all (the README's settings table is checked against it by
tests/test_settings.py), including those read outside this package: the op's build settings are
read by `relu_impls.build.build_settings()` (relu_impls sits below profiling and may not import
it), the op's thresholds by csrc/relu_kernels.cc, the requirements file by the Makefile and the
fixtures folder by tests/conftest.py. Variables that one process sets for its children are not
settings: they are named `_RELU_LAB_INTERNAL_*` and live beside the code that sets them
(profiling.process, profiling.execution.worker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "./.relu_lab"
DEFAULT_MAX_TRACE_BYTES = 1 << 30  # 1 GiB of decompressed JSON


@dataclass(frozen=True)
class Setting:
    """One environment variable: what it sets, its default, and who reads it."""

    name: str
    what: str
    default: str
    read_by: str


SETTINGS: tuple[Setting, ...] = (
    Setting("RELU_LAB_DATA", "where runs, the SQLite store and traces live", "`./.relu_lab`",
            "profiling.settings.data_dir"),
    Setting("RELU_LAB_MAX_TRACE_BYTES",
            "largest Chrome trace read, after decompression (gzip-bomb guard)", "1 GiB",
            "profiling.settings.max_trace_bytes"),
    Setting("RELU_LAB_EXTRA_VARIANTS",
            "comma-separated modules whose `VARIANTS` dict of `relu_impls.Variant`s joins the "
            "registry of runs (ids starting with `_` never appear in the dashboard); the tests "
            "load `faulty_variants` from tests/ this way", "none",
            "profiling.settings.extra_variant_modules"),
    Setting("RELU_LAB_CACHE", "where the compiled op and trace scanner are cached", "`~/.cache/relu_lab/ops`",
            "relu_impls.build.build_settings"),
    Setting("RELU_LAB_CSRC", "the op's sources", "the repository's `csrc/`",
            "relu_impls.build.build_settings"),
    Setting("RELU_LAB_NVCC_ARCH", "`nvcc` target when the op is built with CUDA",
            "`-arch=sm_80`", "relu_impls.build.build_settings"),
    Setting("RELU_LAB_PARALLEL_MIN_BYTES",
            "the op's threshold for using the thread pool (bytes)", "1 MiB",
            "csrc/relu_kernels.cc"),
    Setting("RELU_LAB_STREAM_MIN_BYTES", "the op's threshold for non-temporal stores (bytes)",
            "16 MiB", "csrc/relu_kernels.cc"),
    Setting("RELU_LAB_REQUIREMENTS", "requirements file `make` installs", "`requirements.txt`",
            "Makefile"),
    Setting("RELU_LAB_FIXTURES", "where tests find the trace fixtures", "`tests/fixtures`",
            "tests/conftest.py"),
    Setting("RELU_LAB_CONVERT_TIMEOUT_S",
            "time limit of the child process that converts an `.xplane.pb` (s)", "300",
            "profiling.settings.convert_limits"),
    Setting("RELU_LAB_CONVERT_MEMORY_MB",
            "address-space limit of the child process that converts an `.xplane.pb` (MiB)",
            "8192", "profiling.settings.convert_limits"),
)
SETTINGS += (
    Setting("RELU_LAB_STORE", "a shared store, `postgresql://user@host:port/db` (or "
            "`sqlite:///path`); CLI: `--store`", "unset: SQLite in `RELU_LAB_DATA`",
            "profiling.settings.store_url"),
    Setting("RELU_LAB_MACHINE", "the machine name runs are recorded under", "the hostname",
            "profiling.settings.machine_name"),
    Setting("RELU_LAB_TRACE_CACHE", "local copies of a PostgreSQL store's traces",
            "`~/.cache/relu_lab/traces`", "profiling.settings.trace_cache_root"),
    Setting("RELU_LAB_DB_CONNECT_TIMEOUT_S",
            "how long a PostgreSQL store may take to accept a connection (whole s, at least 2, "
            "as libpq counts them)", "10", "profiling.settings.db_connect_timeout_s"),
    Setting("RELU_LAB_DB_STATEMENT_TIMEOUT_S",
            "longest one statement on a PostgreSQL store may run, lock waits and a trace of up "
            "to 1 GiB written included (s)", "600", "profiling.settings.db_statement_timeout_s"),
    Setting("RELU_LAB_CAPTURE_TIMEOUT_S",
            "how long a remote capture may run past its duration (s); `capture --timeout` and "
            "the Capture page set the whole limit instead", "60",
            "profiling.settings.capture_timeout_s"),
)
# Servers the product starts: the dashboard under `make run` and its viewers (XProf, Perfetto).
SETTINGS += (
    Setting("RELU_LAB_HOST",
            "address the dashboard (`make run`, or `make run HOST=…`) and its trace viewers "
            "(XProf, Perfetto) listen on; `0.0.0.0` serves them to the network",
            "`127.0.0.1` (this machine only)", "Makefile, profiling.settings.serve_host"),
    Setting("RELU_LAB_XPROF_START_TIMEOUT_S",
            "how long the dashboard waits for its XProf server to answer at start (s)", "90",
            "profiling.settings.xprof_start_timeout_s"),
)
DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_XPROF_START_TIMEOUT_S = 90.0
DEFAULT_CONVERT_TIMEOUT_S = 300.0
DEFAULT_CONVERT_MEMORY_MB = 8192
DEFAULT_DB_CONNECT_TIMEOUT_S = 10
DEFAULT_DB_STATEMENT_TIMEOUT_S = 600.0
DEFAULT_CAPTURE_TIMEOUT_S = 60.0
"""The standard toolchain variables `CXX` (C++ compiler, default `g++`) and `NVCC` (default
`nvcc` on PATH) are read by relu_impls.build.build_settings too; they carry no prefix."""


def data_dir() -> Path:
    """`$RELU_LAB_DATA`, else ./.relu_lab (relative to the working directory)."""
    return Path(os.environ.get("RELU_LAB_DATA") or DEFAULT_DATA_DIR)


def max_trace_bytes() -> int:
    """`$RELU_LAB_MAX_TRACE_BYTES` (a number, 1e9 allowed), else 1 GiB; a bad value -> default."""
    try:
        return int(float(os.environ.get("RELU_LAB_MAX_TRACE_BYTES", DEFAULT_MAX_TRACE_BYTES)))
    except ValueError:
        return DEFAULT_MAX_TRACE_BYTES


def extra_variant_modules() -> list[str]:
    """Module names in `$RELU_LAB_EXTRA_VARIANTS` (comma-separated; empty items dropped)."""
    return [m.strip() for m in os.environ.get("RELU_LAB_EXTRA_VARIANTS", "").split(",")
            if m.strip()]


def _positive(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def convert_limits() -> tuple[float, int]:
    """(timeout s, memory MiB) for one `.xplane.pb` conversion: RELU_LAB_CONVERT_TIMEOUT_S and
    RELU_LAB_CONVERT_MEMORY_MB, else 300 s and 8192 MiB; a bad value -> the default."""
    return (_positive("RELU_LAB_CONVERT_TIMEOUT_S", DEFAULT_CONVERT_TIMEOUT_S),
            int(_positive("RELU_LAB_CONVERT_MEMORY_MB", DEFAULT_CONVERT_MEMORY_MB)))


def store_url() -> str | None:
    """`$RELU_LAB_STORE` (a postgresql:// or sqlite:/// URL), else None: SQLite in data_dir()."""
    return os.environ.get("RELU_LAB_STORE") or None


def machine_name() -> str | None:
    """`$RELU_LAB_MACHINE` stripped, else None (the hostname is used)."""
    return os.environ.get("RELU_LAB_MACHINE", "").strip() or None


def trace_cache_root() -> Path:
    """`$RELU_LAB_TRACE_CACHE`, else ~/.cache/relu_lab/traces."""
    root = os.environ.get("RELU_LAB_TRACE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "relu_lab" / "traces"


def db_connect_timeout_s() -> int:
    """`$RELU_LAB_DB_CONNECT_TIMEOUT_S`, else 10: whole seconds, at least 2 (libpq rounds down
    and waits at least 2 s); a bad value -> the default."""
    return max(2, int(_positive("RELU_LAB_DB_CONNECT_TIMEOUT_S", DEFAULT_DB_CONNECT_TIMEOUT_S)))


def db_statement_timeout_s() -> float:
    """`$RELU_LAB_DB_STATEMENT_TIMEOUT_S`, else 600 s; a bad value -> the default."""
    return _positive("RELU_LAB_DB_STATEMENT_TIMEOUT_S", DEFAULT_DB_STATEMENT_TIMEOUT_S)


def capture_timeout_s() -> float:
    """`$RELU_LAB_CAPTURE_TIMEOUT_S`, else 60 s: what a capture may take past its duration."""
    return _positive("RELU_LAB_CAPTURE_TIMEOUT_S", DEFAULT_CAPTURE_TIMEOUT_S)


def serve_host() -> str:
    """`$RELU_LAB_HOST` stripped (the address servers the product starts bind), else
    127.0.0.1."""
    return os.environ.get("RELU_LAB_HOST", "").strip() or DEFAULT_SERVE_HOST


def xprof_start_timeout_s() -> float:
    """`$RELU_LAB_XPROF_START_TIMEOUT_S`, else 90 s; a bad value -> the default."""
    return _positive("RELU_LAB_XPROF_START_TIMEOUT_S", DEFAULT_XPROF_START_TIMEOUT_S)
