"""What kind of work an event is: compute, memcpy, collective (= communication) or other.

The one classifier behind every surface (trace-summary, the Traces page, scenarios,
distributed and capture runs), so one trace gives one answer:

- collective (communication): collectives (CollectiveReduceV2, AllReduce, NCCL, RING, gloo,
  c10d) and transfers between devices or hosts (H2D, D2H, P2P, _Send/_Recv, _HostSend/_HostRecv),
  and the work of TF's collective_ops threads;
- memcpy: same-device copies and memsets (EagerCopyToDevice on one device, DtoD, aten::copy_);
- compute: op and kernel events (TF ops, PyTorch cpu_op, GPU kernels, anything on a device's
  lanes), XLA fusion kernels, and the work items of the Eigen/TF thread pools;
- other: framework and runtime overhead, annotations. An "other" event nested inside an op takes
  that op's kind (an XLA module's executable run inside its `__inference_*` call is compute).

Function-call wrappers (`__inference_*`) count once: only their self time, never their children's.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

KINDS = ("compute", "memcpy", "collective", "other")

COLLECTIVE_RE = re.compile(
    r"all[-_ ]?reduce|all[-_ ]?gather|reduce[-_ ]?scatter|all[-_ ]?to[-_ ]?all|nccl|collective|"
    r"c10d::|gloo|broadcast_(?:send|recv)|\bring\b|ring[-_ ]?(?:reduc|gather)", re.I)
TRANSFER_RE = re.compile(
    r"(?:htod|h2d|dtoh|d2h|ptop|p2p)(?![a-z0-9])|^_?(?:host)?(?:send|recv)$|"
    r"copy(?:host|from)(?:to)?(?:device|gpu|host)|copydevicetohost|copyfromgputohost", re.I)
MEMCPY_RE = re.compile(
    r"memcpy|memset|copytodevice|devicecopy|dtod|d2d|^aten::copy_$|^aten::_to_copy$|"
    r"^memory copy", re.I)
FUSION_RE = re.compile(r"(?:^|[._])fusion(?:[._\d]|$)", re.I)
COMPUTE_CATS = {"cpu_op", "kernel", "gpu_op", "tf_op", "operator", "xla ops", "xla_op", "op"}
MEMCPY_CATS = {"gpu_memcpy", "gpu_memset", "memcpy", "memset"}
# Host-side runtime calls (cudaLaunchKernel, cudaMemcpyAsync): overhead, whatever their name says.
RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "runtime", "python_function"}
# The profiler's own range (PyTorch writes "PyTorch Profiler (0)" on a lane of its own): it covers
# the whole capture and is no work. User step annotations stay: time in them outside ops is host
# overhead ("other").
PROFILER_RANGE_CATS = {"trace"}
POOL_THREAD_RE = re.compile(r"eigen", re.I)
COLLECTIVE_THREAD_RE = re.compile(r"^collective_ops", re.I)
DEVICE_PROCESS_RE = re.compile(r"^/device:(?:gpu|tpu)", re.I)


def is_profiler_range(events: pd.DataFrame) -> pd.Series:
    """True for the profiler's own capture-range events, which the time breakdown leaves out."""
    return _per_category(events["cat"], lambda c: c.lower() in PROFILER_RANGE_CATS)


def _per_category(column: pd.Series, rule) -> pd.Series:
    """Apply a str -> bool rule once per distinct value (columns are categoricals)."""
    codes, names = category_codes(column, None)
    table = np.asarray([rule(n) for n in names] or [False], dtype=bool)
    return pd.Series(table[codes] if names else np.zeros(len(codes), bool), index=column.index)


def _name_kind(name: str) -> str:
    if COLLECTIVE_RE.search(name) or TRANSFER_RE.search(name):
        return "collective"
    if MEMCPY_RE.search(name):
        return "memcpy"
    if FUSION_RE.search(name):
        return "compute"
    return ""


def _cat_kind(cat: str) -> str:
    c = cat.lower()
    if c in MEMCPY_CATS:
        return "memcpy"
    if c in COMPUTE_CATS:
        return "compute"
    if c in RUNTIME_CATS:
        return "runtime"
    return ""


def _lane_kind(process: str, thread: str) -> str:
    if COLLECTIVE_THREAD_RE.search(thread):
        return "collective"
    if POOL_THREAD_RE.search(thread) or DEVICE_PROCESS_RE.search(process):
        return "compute"
    return ""


def category_codes(column: pd.Series, dtype: type | None = np.int64
                   ) -> tuple[np.ndarray, list[str]]:
    """(codes, categories as text) of a column; ``dtype=None`` keeps pandas' compact codes
    (int8 for up to 127 categories), which is what a rule table indexed per event needs."""
    col = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    codes = col.cat.codes.to_numpy()
    return (codes if dtype is None else codes.astype(dtype)), [str(c) for c in
                                                               col.cat.categories]


# Kinds as small integer codes while classifying: 1..4 follow KINDS, 0 = not decided yet.
_CODE = {"": 0, "compute": 1, "memcpy": 2, "collective": 3, "other": 4, "runtime": 5}


def _codes_of(column: pd.Series, rule) -> np.ndarray:
    """_CODE[rule(value)] per event, with the rule evaluated once per distinct value."""
    codes, names = category_codes(column, None)
    if not names:
        return np.zeros(len(codes), dtype=np.int8)
    table = np.asarray([_CODE[rule(n)] for n in names], dtype=np.int8)
    return table[codes]


def _lane_codes(process: pd.Series, thread: pd.Series) -> np.ndarray:
    """_CODE[_lane_kind] per event, evaluated once per (process, thread) pair: over every pair
    when there are few (a table indexed per event, no per-event sort), else over those seen."""
    p_codes, p_names = category_codes(process, None)
    t_codes, t_names = category_codes(thread, None)
    p_names, t_names = p_names or [""], t_names or [""]  # all missing: the code -1 reads ""
    if len(p_names) * len(t_names) <= 1 << 16:
        table = np.asarray([[_CODE[_lane_kind(p, t)] for t in t_names] for p in p_names],
                           dtype=np.int8)
        return table[p_codes, t_codes]
    width = len(t_names)
    uniq, inverse = np.unique(p_codes.astype(np.int64) * width + t_codes, return_inverse=True)
    table = np.asarray([_CODE[_lane_kind(p_names[k // width], t_names[k % width])]
                        for k in uniq.tolist()], dtype=np.int8)
    return table[inverse]


def classify_events(events: pd.DataFrame) -> pd.Series:
    """Kind per event, a categorical over KINDS (see the module docstring for the rules; first
    match wins: name, then category, then lane, then the enclosing op's kind)."""
    if events.empty:
        return pd.Series(pd.Categorical([], categories=list(KINDS)), index=events.index)
    by_name = _codes_of(events["name"], _name_kind)
    by_cat = _codes_of(events["cat"], _cat_kind)
    lane = _lane_codes(events["process"], events["thread"])
    runtime = by_cat == _CODE["runtime"]
    kind = by_name.copy()
    # A memcpy-named runtime call (cudaMemcpyAsync) is host overhead, not the copy itself.
    kind[runtime & (by_name == _CODE["memcpy"])] = 0
    todo = (kind == 0) & ~runtime
    kind[todo] = by_cat[todo]
    todo = (kind == 0) & ~runtime
    kind[todo] = lane[todo]
    if "parent" in events.columns and "depth" in events.columns:
        _inherit(kind, events["parent"].to_numpy(), events["depth"].to_numpy())
    kind[kind == 0] = _CODE["other"]
    return pd.Series(pd.Categorical.from_codes(kind - 1, categories=list(KINDS)),
                     index=events.index)


def _inherit(kind: np.ndarray, parent: np.ndarray, depth: np.ndarray) -> None:
    """Undecided events take their parent's kind, level by level from the top."""
    if not ((kind == 0) & (parent >= 0)).any():
        return
    order = np.argsort(depth, kind="stable")
    levels = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
    for d in range(1, len(levels) - 1):
        rows = order[levels[d]:levels[d + 1]]
        rows = rows[(kind[rows] == 0) & (parent[rows] >= 0)]
        if len(rows):
            kind[rows] = kind[parent[rows]]


def op_type_kind(op_type: str) -> str:
    """Kind of one TF op type (an xprof framework_op_stats row): the name rules, else compute."""
    return _name_kind(op_type) or "compute"
