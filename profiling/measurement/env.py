"""The environment a run was measured in: software, hardware, configuration."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(repo: Path = REPO) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def op_build_info() -> dict | None:
    """custom_op.build_info() when the op module exists (never builds)."""
    try:
        from relu_impls import custom_op

        return custom_op.build_info()
    except Exception as e:  # the op module may be absent or unbuilt; record why
        return {"available": False, "error": f"{type(e).__name__}: {e}"[:300]}


def host_environment() -> dict[str, Any]:
    """What does not need TensorFlow: host, CPU, cores, Python, git commit, time."""
    return {
        "hostname": socket.gethostname(),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "git_commit": git_commit(),
    }


def tf_environment(threads: int | None = None, allocator: str | None = None) -> dict[str, Any]:
    """Adds TensorFlow version, devices, thread settings, allocator and the op build info."""
    import tensorflow as tf

    return {
        **host_environment(),
        "tf_version": tf.__version__,
        "devices": [d.name for d in tf.config.list_physical_devices()],
        "intra_op_threads": threads or tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "allocator": allocator,
        "TF_CPU_ALLOCATOR_USE_BFC": os.environ.get("TF_CPU_ALLOCATOR_USE_BFC"),
        "op_build_info": op_build_info(),
    }
