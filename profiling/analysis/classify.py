"""What kind of work an event is: compute, memcpy, collective or other."""

from __future__ import annotations

import re

import pandas as pd

KINDS = ("compute", "memcpy", "collective", "other")

COLLECTIVE_RE = re.compile(
    r"all[-_ ]?reduce|all[-_ ]?gather|reduce[-_ ]?scatter|all[-_ ]?to[-_ ]?all|nccl|"
    r"collective(?:reduce|gather|bcast|permute)?|c10d::|gloo|broadcast_(?:send|recv)", re.I)
MEMCPY_RE = re.compile(
    r"memcpy|memset|^_?send$|^_?recv$|_hostsend|_hostrecv|^_send|^_recv|copytodevice|"
    r"copyhosttodevice|copydevicetohost|htod|dtoh|dtod|_host.*copy|devicecopy|^aten::copy_$|"
    r"^aten::_to_copy$|^memory copy", re.I)
COMPUTE_CATS = {"cpu_op", "kernel", "gpu_op", "tf_op", "operator", "xla ops", "xla_op", "op"}
MEMCPY_CATS = {"gpu_memcpy", "gpu_memset", "memcpy", "memset"}
# The profiler's own range (PyTorch writes "PyTorch Profiler (0)" on a lane of its own): it covers
# the whole capture and is no work. User step annotations stay: time in them outside ops is host
# overhead ("other").
PROFILER_RANGE_CATS = {"trace"}


def is_profiler_range(events: pd.DataFrame) -> pd.Series:
    """True for the profiler's own capture-range events, which the time breakdown leaves out."""
    return events["cat"].astype(str).str.lower().isin(PROFILER_RANGE_CATS)


def classify_events(events: pd.DataFrame) -> pd.Series:
    """Kind per event: collective (by name), memcpy (by category or name), compute (op categories,
    TF ops), else other (framework overhead, annotations, runtime calls)."""
    name = events["name"].astype(str)
    cat = events["cat"].astype(str).str.lower()
    kind = pd.Series("other", index=events.index, dtype=object)
    compute = cat.isin(COMPUTE_CATS)
    memcpy = cat.isin(MEMCPY_CATS) | name.str.contains(MEMCPY_RE)
    collective = name.str.contains(COLLECTIVE_RE) & (compute | memcpy | cat.eq("") | cat.eq("kernel"))
    kind[compute] = "compute"
    kind[memcpy] = "memcpy"
    kind[collective] = "collective"
    return kind
