"""Helpers several test modules share: synthetic cases, a filled store, Plotly decoding and
opening dashboard pages with AppTest. A plain module (tests/ is on sys.path), so no test module
imports another."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from profiling.store import CASE_COLUMNS, Store

REPO = Path(__file__).resolve().parents[1]

SHAPES = [("1000", 1000), ("100x1000", 100_000), ("1000x1000", 1_000_000)]


def synthetic_cases(
    variants: dict[str, float] | None = None,
    modes: tuple[str, ...] = ("eager",),
    ci_fraction: float = 0.02,
    peak_gbps: float | None = 20.0,
    run_id: str = "run-a",
) -> pd.DataFrame:
    """Cases whose median time is ``factor * numel * 1ns`` for each variant."""
    variants = variants or {"nn_relu": 1.0, "where": 1.05, "maximum": 3.0}
    rows = []
    for variant, factor in variants.items():
        for mode in modes:
            for shape, numel in SHAPES:
                median = factor * numel * 1e-9 + 1e-6
                gbps = 8 * numel / median / 1e9
                rows.append(
                    dict(
                        run_id=run_id,
                        case_id=f"{run_id}-{variant}-{mode}-{shape}",
                        variant=variant,
                        variant_params="{}",
                        label=variant,
                        shape=shape,
                        numel=numel,
                        dtype="float32",
                        device="CPU:0",
                        threads=2,
                        allocator="bfc",
                        mode=mode,
                        **{"pass": "forward"},
                        status="ok",
                        reason="",
                        median_s=median,
                        min_s=median * 0.98,
                        iqr_s=median * 0.01,
                        ci95_low_s=median * (1 - ci_fraction),
                        ci95_high_s=median * (1 + ci_fraction),
                        ci95_s=median * ci_fraction,
                        n_samples=5,
                        number=10,
                        elements_per_s=numel / median,
                        bytes_per_call=8 * numel,
                        gbps=gbps,
                        peak_gbps=peak_gbps,
                        utilization=None if peak_gbps is None else min(gbps / peak_gbps, 1.0),
                        page_faults_per_call=0.5,
                        peak_rss_mb=100.0,
                    )
                )
    return pd.DataFrame(rows)


def decode(value):
    """Plotly 7 writes numeric arrays as {"dtype", "bdata"[, "shape"]}: turn them into lists."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        if "shape" in value:
            array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
        return array.tolist()
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def fill(store: Store, cases: pd.DataFrame, label: str = "laptop") -> str:
    run_id = store.create_run({"variants": []}, label=label, n_cases=len(cases),
                              environment={"cpu": "test <cpu>", "tf": "2.21"})
    for index, row in enumerate(cases.to_dict("records")):
        row = {k: row[k] for k in CASE_COLUMNS if k in row}
        row.update(run_id=run_id, case_id=f"{run_id}-{index}", idx=index)
        store.add_case(row, samples=[row["median_s"]] * 5, breakdown=dict(
            compute_us=10.0, memcpy_us=1.0, collective_us=0.0, idle_us=2.0, other_us=0.0))
    store.finish_run(run_id, "complete")
    return run_id


MAIN = REPO / "app" / "main.py"
TIMEOUT_S = 120  # the first run imports TensorFlow


def open_page(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT_S)
    at.run()
    if page:
        at.switch_page(f"views/{page}.py")
        at.query_params.update(query or {})
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figures(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by widget key suffix -> decoded figure JSON."""
    out = {}
    for element in at.get("plotly_chart"):
        key = element.proto.id.rsplit("-", 1)[-1]
        out[key] = decode(json.loads(element.proto.spec))
    return out


def texts(elements) -> list[str]:
    return [e.value for e in elements]
