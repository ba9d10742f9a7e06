"""A model run in a person's words: the rewrites' table and the one decision it supports.

Pure functions of the `model --json` result, shared by the CLI, the Model page and the report.
A rewrite is recommended only when its speedup's whole 95% CI lies above 1 + threshold and its
outputs match the original's within the rewrite's tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from profiling.presentation import units

DEFAULT_THRESHOLD = 0.05
WHAT = {"fold_bn": "fold BatchNorm into the convolutions for inference",
        "xla": "compile the step with XLA (jit_compile=True)",
        "mixed_bfloat16": "run under the mixed_bfloat16 policy"}


def format_speedup(speedup: Any, low: Any, high: Any) -> str:
    """'1.48× [1.41, 1.55]' (units.MISSING when not measured)."""
    if speedup is None:
        return units.MISSING
    return f"{speedup:.2f}× [{low:.2f}, {high:.2f}]"


def describe(name: str) -> str:
    """What a rewrite does, as an instruction."""
    if name.startswith("swap:"):
        kind, _, variant = name[len("swap:"):].partition("=")
        return f"compute every {kind} as {variant}"
    return WHAT.get(name, name)


def verdict(r: dict[str, Any], threshold: float = DEFAULT_THRESHOLD) -> str:
    """faster / slower / not resolved / failed, by the CI against 1 ± threshold."""
    if r.get("status") != "ok" or r.get("speedup") is None:
        return "failed"
    if r["ci95_low"] > 1 + threshold:
        return "faster"
    if r["ci95_high"] < 1 - threshold:
        return "slower"
    return "not resolved"


def rewrite_table(rewrites: Sequence[dict[str, Any]], threshold: float = DEFAULT_THRESHOLD
                  ) -> pd.DataFrame:
    """One row per rewrite, largest speedup first: speedup [CI], verdict, output differences,
    activations fused after it, step memory, and the reason of a failure."""
    rows = []
    for r in sorted(rewrites, key=lambda r: -(r.get("speedup") or 0.0)):
        fused = r.get("activations_fused_after")
        after = r.get("activations_after")
        unplaced = r.get("activations_unplaced_after") or 0
        rows.append({
            "rewrite": r["name"],
            "speedup [95% CI]": format_speedup(r.get("speedup"), r.get("ci95_low"),
                                               r.get("ci95_high")),
            "verdict": verdict(r, threshold),
            "max |Δ|": units.format_scientific(r.get("max_abs_diff")),
            "max rel. Δ": units.format_scientific(r.get("max_rel_diff")),
            "fused after": units.MISSING if fused is None else f"{fused} of {after}"
            + (f" ({unplaced} not placed in the trace)" if unplaced else ""),
            "step memory": units.MISSING if r.get("peak_memory_bytes") is None
            else f"{r['peak_memory_bytes'] / 2**20:.1f} MiB",
            "reason": r.get("reason") or "",
        })
    return pd.DataFrame(rows)


def decision(result: dict[str, Any], threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """What to do, in one sentence per measured conclusion (the best rewrite first)."""
    out = []
    good = [r for r in result.get("rewrites", []) if verdict(r, threshold) == "faster"]
    for r in sorted(good, key=lambda r: -r["speedup"]):
        out.append(f"{describe(r['name'])}: {format_speedup(r['speedup'], r['ci95_low'], r['ci95_high'])}"
                   f", max |Δ| {units.format_scientific(r['max_abs_diff'], 1)}")
    if not out:
        measured = [r for r in result.get("rewrites", []) if r.get("status") == "ok"]
        out.append("no rewrite was measurably faster here" if measured
                   else "no rewrite was measured")
    return out
