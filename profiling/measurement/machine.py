"""Which machine a run was measured on: a short name and an identity to compare runs by.

The name is $RELU_LAB_MACHINE when set (a CI runner whose hostname changes every job, or two
identities on one host), else the hostname. The identity gathers what makes timings comparable:
CPU model, cores, cache sizes, memory, GPUs (TensorFlow's devices, nvidia-smi's models), OS,
TensorFlow version, the op's build key and the project's git commit, taken from the run's
environment (profiling.measurement.env) where present.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from profiling import settings
from profiling.measurement.env import host_environment

MACHINE_ENV = "RELU_LAB_MACHINE"
IDENTITY_KEYS = ("hostname", "cpu_model", "cores_physical", "cores_logical", "caches",
                 "memory_gb", "gpus", "gpu_models", "os", "tf_version", "op_build_key",
                 "git_commit")


CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


def sysfs_caches(root: Path = CACHE_DIR) -> list[tuple[int, str, str]]:
    """(level, type, size text) of each cache sysfs lists under `root`, e.g. (1, "Data", "48K");
    [] elsewhere. The one reader of the cache sizes (cpu_caches, roof.cache_sizes)."""
    out = []
    for d in sorted(root.glob("index*")):
        try:
            out.append((int((d / "level").read_text()), (d / "type").read_text().strip(),
                        (d / "size").read_text().strip()))
        except (OSError, ValueError):
            continue
    return out


def cpu_caches(root: Path = CACHE_DIR) -> dict[str, str]:
    """{'L1d': '48K', 'L1i': '32K', 'L2': '2048K', 'L3': '307200K'} from sysfs ({} elsewhere)."""
    suffix = {"Data": "d", "Instruction": "i"}
    return {f"L{level}{suffix.get(kind, '')}": size for level, kind, size in sysfs_caches(root)}


def gpu_models(timeout_s: float = 5.0) -> list[str]:
    """['NVIDIA H100 80GB HBM3, 81559 MiB', ...] from nvidia-smi; [] without one (or if it
    fails): TensorFlow's device list names GPUs but not their model."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 \
        else []


def machine_identity(environment: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The IDENTITY_KEYS of this machine, preferring what the run's environment recorded."""
    env = {**host_environment(), **{k: v for k, v in (environment or {}).items()
                                    if v is not None}}
    build = env.get("op_build_info") or {}
    devices = env.get("devices") or []
    return {
        "hostname": env.get("hostname"),
        "cpu_model": env.get("cpu_model"),
        "cores_physical": env.get("cores_physical"),
        "cores_logical": env.get("cores_logical"),
        "caches": cpu_caches(),
        "memory_gb": env.get("memory_gb"),
        "gpus": [d for d in devices if "GPU" in str(d)],
        "gpu_models": gpu_models(),
        "os": env.get("platform"),
        "tf_version": env.get("tf_version"),
        "op_build_key": build.get("key") if isinstance(build, Mapping) else None,
        "git_commit": env.get("git_commit"),
    }


def machine_name(identity: Mapping[str, Any] | None = None) -> str:
    """$RELU_LAB_MACHINE, else the identity's hostname."""
    name = settings.machine_name() or ""
    return name or str((identity or {}).get("hostname") or host_environment()["hostname"])


def machine_columns(environment: Mapping[str, Any] | None) -> dict[str, str]:
    """runs.machine and runs.machine_json for a run with this environment."""
    identity = machine_identity(environment)
    return {"machine": machine_name(identity), "machine_json": json.dumps(identity, default=str)}
