"""Which ops of a traced step ran in half precision: the trace's ops (op_stats) joined with
their dtype in the step's graph (Grappler keeps the node names of the ops it rewrites)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

HALF_DTYPES = ("float16", "bfloat16")


def op_dtypes(graph) -> dict[str, str]:
    """Op name -> dtype of its first output (else of its first input) in a tf.Graph."""
    out = {}
    for op in graph.get_operations():
        tensors = list(op.outputs) or list(op.inputs)
        out[op.name] = tensors[0].dtype.name if tensors else ""
    return out


def precision_of_ops(stats: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """The trace's ops (op_stats) with their graph dtype ("" when Grappler renamed the op).

    Columns: op_name, op_type, dtype, half (float16/bfloat16), self_time_us.
    """
    frame = stats[["op_name", "op_type", "self_time_us"]].copy()
    frame["dtype"] = [dtypes.get(str(n), "") for n in frame["op_name"]]
    frame["half"] = frame["dtype"].isin(HALF_DTYPES)
    return frame[["op_name", "op_type", "dtype", "half", "self_time_us"]]


def half_summary(ops: pd.DataFrame) -> dict[str, Any]:
    """half_ops (count), half_time_fraction (of op self time), half_op_types (sorted)."""
    busy = float(ops["self_time_us"].fillna(0).sum())
    half = ops[ops["half"]]
    return {"half_ops": int(len(half)),
            "half_time_fraction": float(half["self_time_us"].fillna(0).sum() / busy) if busy
            else math.nan,
            "half_op_types": ",".join(sorted(set(half["op_type"].astype(str))))}
