"""The one run writer: every experiment fills `CaseResult`s and hands them to `RunWriter`.

A run is created when the writer opens and finished when it closes: complete, which the store's
`finish_run` records as failed when some case failed and none is ok, interrupted on Ctrl-C or
a cancel, failed on an error (re-raised). Case ids have one format, `<run_id>-<idx:04d>`
(fusion rows, which are no cases, `<run_id>-fusion-<i:04d>`); readers never parse them, so ids
stored in older formats stay readable. A case's median, IQR and 95% CI are computed here from its
samples, the same way for every kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CASE_KINDS = ("profile", "scenario", "claim", "distributed", "capture", "model")


def case_id(run_id: str, idx: int) -> str:
    """The id of case `idx` of a run (the one format)."""
    return f"{run_id}-{idx:04d}"


def fusion_id(run_id: str, i: int) -> str:
    """The id of fusion row `i` of a run that has no case for it (the profile run's report)."""
    return f"{run_id}-fusion-{i:04d}"


@dataclass
class CaseResult:
    """One measured (or failed) case, as every experiment reports it.

    samples: seconds per call, one per repeat; metrics: further case columns (gbps,
    ratio_to_baseline, peak_rss_mb, …); trace: a trace file stored with the case (its op stats
    and breakdown alongside when given).
    """

    idx: int
    kind: str
    variant: str
    label: str = ""
    shape: str = ""
    numel: int | None = None
    dtype: str = "float32"
    device: str = "CPU:0"
    mode: str = ""
    pass_: str = "forward"
    status: str = "ok"
    reason: str | None = None
    variant_params: Mapping[str, Any] | str = field(default_factory=dict)
    threads: int | None = None
    allocator: str | None = None
    samples: Sequence[float] = ()
    number: int | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    trace: str | Path | None = None
    op_stats: pd.DataFrame | None = None
    breakdown: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in CASE_KINDS:
            raise ValueError(f"bad case kind {self.kind!r}; accepted: {', '.join(CASE_KINDS)}")

    def row(self, run_id: str) -> dict[str, Any]:
        """The store's case row (without the trace's hash, which the writer adds)."""
        from profiling.measurement.stats import summarize_samples

        params = self.variant_params if isinstance(self.variant_params, str) else \
            json.dumps(dict(self.variant_params), sort_keys=True)
        row: dict[str, Any] = {
            "run_id": run_id, "case_id": case_id(run_id, self.idx), "idx": self.idx,
            "kind": self.kind, "variant": self.variant, "variant_params": params,
            "label": self.label, "shape": self.shape, "numel": self.numel, "dtype": self.dtype,
            "device": self.device, "threads": self.threads, "allocator": self.allocator,
            "mode": self.mode, "pass": self.pass_, "status": self.status, "reason": self.reason,
            "n_samples": len(self.samples), "number": self.number,
        }
        if len(self.samples):
            st = summarize_samples(list(self.samples))
            row.update({k: v for k, v in st.to_dict().items() if k != "ci_coverage"})
        row.update(self.metrics)
        return row


class RunWriter:
    """`with RunWriter(store, kind, spec, label, n_cases) as w: w.add(case)`; `w.run_id`.

    kind: the cases' kind (CASE_KINDS); spec_kind: the kind recorded in the run's spec_json
    (`kind` when not given; "claims" for the claims table); kind_in_spec=False records none
    (profile runs, whose spec_json is a RunSpec's); run_id: an id chosen before the run."""

    def __init__(self, store: Any, kind: str, spec: Mapping[str, Any], label: str = "",
                 n_cases: int = 0, environment: Mapping | None = None,
                 run_id: str | None = None, spec_kind: str | None = None,
                 kind_in_spec: bool = True) -> None:
        if kind not in CASE_KINDS:
            raise ValueError(f"bad case kind {kind!r}; accepted: {', '.join(CASE_KINDS)}")
        self.store, self.kind = store, kind
        self.spec = {"kind": spec_kind or kind, **dict(spec)} if kind_in_spec else dict(spec)
        self.label, self.n_cases, self.environment = label, n_cases, environment
        self.run_id = run_id or ""

    def __enter__(self) -> RunWriter:
        self.run_id = self.store.create_run(self.spec, self.label, self.n_cases, self.environment,
                                            self.run_id or None)
        return self

    def case(self, idx: int, variant: str, **fields: Any) -> CaseResult:
        """A CaseResult of this writer's kind."""
        return CaseResult(idx, self.kind, variant, **fields)

    def case_id(self, idx: int) -> str:
        """The id case `idx` of this run has (or will have)."""
        return case_id(self.run_id, idx)

    def add_fusion(self, rows: pd.DataFrame) -> None:
        """Store fusion rows; rows without a `case_id` get fusion_id(run_id, i)."""
        rows = rows.copy()
        if "case_id" not in rows:
            rows["case_id"] = [fusion_id(self.run_id, i) for i in range(len(rows))]
        self.store.add_fusion(self.run_id, rows)

    def set_environment(self, environment: Mapping) -> None:
        """Replace the run's environment (and the machine columns read from it)."""
        self.environment = environment
        self.store.set_environment(self.run_id, environment)

    def add(self, case: CaseResult) -> str:
        """Store one case (row, samples, trace, op stats, breakdown) atomically; its id."""
        row = case.row(self.run_id)
        if case.trace:
            path = Path(case.trace)
            row["trace_sha256"] = self.store.put_trace(path.read_bytes(), path.name)
        self.store.add_case(row, samples=list(case.samples), op_stats=case.op_stats,
                            breakdown=case.breakdown)
        return row["case_id"]

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.store.finish_run(self.run_id, "complete")  # the store's rule: failed if no case is ok
        elif issubclass(exc_type, KeyboardInterrupt):
            self.store.finish_run(self.run_id, "interrupted")
        else:
            self.store.finish_run(self.run_id, "failed")
