"""Does the activation fuse? The verdict on a fusion block's ops, and XLA's HLO counts.

Graph-mode rows read the ops that actually ran from the trace's xprof framework_op_stats:
fused = the audit (profiling.analysis.activations.fused_activations) finds an activation fused
into a Conv2D/MatMul kernel and no other op ran. XLA rows count HLO instructions in the entry
computation before (stage "hlo") and after optimization (stage "optimized_hlo") and the fusion
instructions the optimizer made. The blocks are built, traced and timed by
profiling.execution.fusion_blocks.
"""

from __future__ import annotations

import re

import pandas as pd

from profiling.analysis.activations import fused_activations

NON_KERNEL_HLO = {"parameter", "tuple", "get-tuple-element", "bitcast", "constant", "reshape"}
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+ = \S+(?:\{[^}]*\})? ([\w\-]+)\(")


def block_fusion(ops: pd.DataFrame) -> dict:
    """fused, fused_into, kernels (distinct ops that ran) and ops ("name:type") of one block's
    ops (op_name, op_type; bookkeeping ops left out)."""
    judged = fused_activations(ops)
    fused_ops = judged[judged["fused"].map(lambda v: v is True)]
    fused = bool(len(fused_ops)) and len(fused_ops) == len(judged)
    return {"fused": fused, "fused_into": str(fused_ops["op_type"].iloc[0]) if fused else None,
            # each op of these straight-line blocks runs once per step; xprof's occurrence
            # counts vary with the allocator, so count the distinct ops that ran
            "kernels": float(len(ops)),
            "ops": [f"{r.op_name}:{r.op_type}" for r in ops.itertuples()]}


def _entry_instructions(hlo: str) -> list[tuple[str, str]]:
    """(name, opcode) of each instruction in the ENTRY computation."""
    out, in_entry = [], False
    for line in hlo.splitlines():
        if line.startswith("ENTRY"):
            in_entry = True
        elif in_entry and line.startswith("}"):
            break
        elif in_entry and (m := _INSTR.match(line)):
            out.append((line.split("=")[0].replace("ROOT", "").strip().lstrip("%"), m.group(1)))
    return out


def hlo_counts(hlo_before: str, hlo_after: str) -> dict:
    """instructions_before/after (entry computation), hlo_fusions, kernels, fused, fused_into."""
    before, after = _entry_instructions(hlo_before), _entry_instructions(hlo_after)
    fusions = [name for name, op in after if op == "fusion"]
    kernels = [op for _, op in after if op not in NON_KERNEL_HLO]
    elementwise_left = [op for op in kernels if op not in ("fusion", "convolution", "dot",
                                                            "custom-call", "copy")]
    return {"instructions_before": len(before), "instructions_after": len(after),
            "hlo_fusions": len(fusions), "kernels": float(len(kernels)),
            "fused": bool(fusions) and not elementwise_left,
            "fused_into": ",".join(fusions) or None}
