"""Helpers several test modules share: synthetic cases, a filled store, Plotly decoding and
opening dashboard pages with AppTest. A plain module (tests/ is on sys.path), so no test module
imports another."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from profiling.presentation import units
from profiling.process import free_port
from profiling.storage.store import CASE_COLUMNS, Store

REPO = Path(__file__).resolve().parents[1]
# tests/fixtures (shipped with the repo); RELU_LAB_FIXTURES points elsewhere
FIXTURES = Path(os.environ.get("RELU_LAB_FIXTURES") or REPO / "tests" / "fixtures")

SHAPES = [("1000", 1000), ("100x1000", 100_000), ("1000x1000", 1_000_000)]


@contextlib.contextmanager
def connect(store: Store):
    """A SQLAlchemy connection of its own to the store's database (one transaction, committed
    at the end), never the Store's: what a second client of the same database sees."""
    import sqlalchemy as sa

    from profiling.storage.db import engine_for

    engine = engine_for(store.url) if store.url else sa.create_engine(f"sqlite:///{store.db_path}")
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def sql(store: Store, query: str, params: dict | None = None) -> list[tuple]:
    """The rows of one statement (named :params), through `connect`."""
    import sqlalchemy as sa

    with connect(store) as conn:
        result = conn.execute(sa.text(query), params or {})
        return [tuple(r) for r in result] if result.returns_rows else []


def table_rows(store) -> dict[str, list]:
    """Every row of every store table, sorted (the schema version bookkeeping left out)."""
    import sqlalchemy as sa

    with connect(store) as conn:
        tables = sorted(sa.inspect(conn).get_table_names())
        return {t: sorted(map(repr, (tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t}")))))
                for t in tables if t not in ("schema_version", "alembic_version")}


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


def as_json(figure) -> dict:
    return decode(json.loads(figure.to_json()))


def traces_named(figure_json: dict, name: str) -> list[dict]:
    return [t for t in figure_json["data"] if t.get("name") == name]


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


def open_import(at: AppTest) -> AppTest:
    """Open the Compare page's bundle import expander, as a click does (the page reruns)."""
    at.session_state["import_open"] = True
    return at.run()


def open_tab(at: AppTest, name: str) -> AppTest:
    """Switch the Compare page's tabs to ``name`` (as a click does: the page reruns and draws
    only that tab)."""
    at.session_state["view"] = name
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


# --- stores with every table filled, compared before and after (bundles, deletes) ---------


def store_state(store: Store) -> tuple[dict, dict]:
    """(table -> sha256 of its sorted rows, trace file name -> sha256 of its bytes); either
    backend (tests/pg.py)."""
    rows = {t: hashlib.sha256(repr(r).encode()).hexdigest() for t, r in table_rows(store).items()}
    rows["schema_version"] = store.schema_version()
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(store.traces_dir.iterdir())}
    return rows, files


def make_run(store: Store, label: str, trace: bytes, status: str = "complete") -> str:
    """A run touching every bundle table: cases, samples, op stats, breakdown, fusion,
    calibration and a trace."""
    import pandas as pd

    run_id = store.create_run({"variants": ["nn_relu"]}, label, 2, {"tf_version": "2.x"})
    sha = store.put_trace(trace, "t.xplane.pb")
    for i in range(2):
        store.add_case({"run_id": run_id, "case_id": f"{run_id}-{i:04d}", "idx": i,
                        "variant": "nn_relu", "variant_params": "{}", "label": "nn_relu",
                        "shape": "1000", "numel": 1000, "dtype": "float32", "device": "CPU:0",
                        "threads": 1, "allocator": "bfc", "mode": "eager", "pass": "forward",
                        "status": "ok", "median_s": 1.5e-5 * (i + 1), "n_samples": 2,
                        "trace_sha256": sha if i == 0 else None},
                       [1e-5, 2e-5],
                       pd.DataFrame([{"op_name": "Relu", "op_type": "Relu", "occurrences": 3,
                                      "self_time_us": 1.0, "total_time_us": 1.0,
                                      "device": "CPU:0"}]),
                       {"compute_us": 1.0, "memcpy_us": 0.0, "collective_us": 0.0,
                        "idle_us": 0.5, "other_us": 0.0})
    store.add_fusion(run_id, pd.DataFrame([{"case_id": f"{run_id}-fusion-000",
                                            "variant": "nn_relu", "block": "conv",
                                            "fused": True, "kernels": 0.0}]))
    store.add_calibration(run_id, {"device": "CPU:0", "threads": 1, "allocator": "bfc",
                                   "peak_gbps": 20.0, "method": "numpy", "size_bytes": 4e7,
                                   "seconds": 0.1})
    if status != "running":
        store.finish_run(run_id, status)
    return run_id


# --- TF processes running a profiler server (remote capture) -------------------------------

TARGET = """
import sys, time
import tensorflow as tf
tf.profiler.experimental.server.start(int(sys.argv[1]))
busy = sys.argv[2] == "busy"
x = tf.random.normal((64, 64))
f = tf.function(lambda x: tf.nn.relu(tf.matmul(x, x)))
f(x)
print("ready", flush=True)
end = time.monotonic() + 240  # never outlives the test session for long
while time.monotonic() < end:
    if busy:
        f(x).numpy()
        time.sleep(0.005)  # events every few ms, yet leaves the CPUs to the test
    else:
        time.sleep(0.05)
"""


def start_target(mode: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-c", TARGET, str(port), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, f"grpc://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready and "ready" in proc.stdout.readline():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"target exited with {proc.returncode}")
    raise RuntimeError("target did not start in time")


# --- reading pages: numbers as shown, the Scenarios page's background runs --------------


def shown_numbers(at) -> list[str]:
    """The text of every number cell of every table on the page, as the browser draws it: a
    Styler's display values, else the raw value (st.dataframe shows floats unrounded)."""
    cells = []
    for element in at.dataframe:
        arrow = element.proto.arrow_data
        data = convert_arrow_bytes_to_pandas_df(arrow.data)
        shown = (convert_arrow_bytes_to_pandas_df(arrow.styler.display_values)
                 if arrow.HasField("styler") else data.astype(str))
        for position, column in enumerate(data.columns):
            values = [str(v) for v in shown.iloc[:, position]]
            if pd.api.types.is_float_dtype(data[column]):
                cells.extend(values)
            else:
                cells.extend(v for v in values if v.startswith("±"))
    return cells


def assert_short_numbers(at) -> None:
    cells = shown_numbers(at)
    too_long = [c for c in cells if units.significant_digits(c) > 4]
    assert not too_long, too_long[:10]


def scenarios_page():
    page = REPO / "app" / "views" / "scenarios.py"
    at = AppTest.from_file(str(page), default_timeout=120)
    at.run()
    assert not at.exception
    return at


def click_run(at, limit_s: float = 300.0) -> None:
    """Press Run and poll the page until its background job has finished."""
    at.button(key="sc_run").click().run()
    wait_finished(at, limit_s)


def wait_finished(at, limit_s: float = 300.0, job: str = "sc_job") -> None:
    """Poll the page until its background job (session key `job`) has finished."""
    deadline = time.monotonic() + limit_s
    while not at.session_state[job].finished:
        assert time.monotonic() < deadline, f"the background job {job} did not finish"
        time.sleep(0.5)
        at.run()
    at.run()


@contextlib.contextmanager
def silent_server(lifetime_s: float = 30.0) -> Iterator[int]:
    """A loopback port that accepts connections and never sends a byte; it closes them and
    stops after lifetime_s at the latest (so code with no timeout fails the test, not hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stay_silent() -> None:
        deadline = time.monotonic() + lifetime_s
        while not stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])
        for conn in accepted:
            conn.close()
        server.close()

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)


def store_timed_run(store: Store, times: dict[str, float], label: str,
                    paired: dict[str, tuple[float, float, float]] | None = None) -> str:
    """A complete run of one case per variant (1e6 float32 elements, function mode) at
    ``times`` s per call with a ±2% CI; ``paired``: variant -> its stored ratio to nn_relu's
    time with the CI (as if timed interleaved with nn_relu)."""
    run_id = store.create_run({"variants": list(times)}, label=label, n_cases=len(times))
    base_id = f"{run_id}-0000"
    for index, (variant, median) in enumerate(times.items()):
        ratio = (paired or {}).get(variant, (None, None, None))
        store.add_case({
            "run_id": run_id, "case_id": f"{run_id}-{index:04d}", "idx": index,
            "variant": variant, "variant_params": "{}", "label": variant, "shape": "1000000",
            "numel": 1_000_000, "dtype": "float32", "device": "CPU:0", "threads": 2,
            "allocator": "bfc", "mode": "function", "pass": "forward", "status": "ok",
            "reason": "", "median_s": median, "min_s": median * 0.97, "iqr_s": median * 0.02,
            "ci95_low_s": median * 0.98, "ci95_high_s": median * 1.02, "ci95_s": median * 0.02,
            "n_samples": 9, "number": 100, "kind": "profile",
            "baseline_case_id": None if variant == "nn_relu" else base_id,
            "ratio_to_baseline": ratio[0], "ratio_ci95_low": ratio[1],
            "ratio_ci95_high": ratio[2]}, samples=[median] * 9)
    store.finish_run(run_id, "complete")
    return run_id


def assert_one_run_writer(store: Store, run_id: str, kind: str, spec_kind: str | None = "same"
                          ) -> pd.DataFrame:
    """The run's cases were written by the one run writer: each id is `<run_id>-<idx:04d>`,
    each case has the writer's `kind`, and the run's spec_json names `spec_kind` (the kind
    itself unless given; None: no kind in the spec, as a profile run's RunSpec). Its cases."""
    cases = store.cases([run_id])
    assert len(cases), f"run {run_id} has no cases"
    ids = [str(c) for c in cases["case_id"]]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(rf"{re.escape(run_id)}-\d{{4}}", c) for c in ids), ids
    assert set(cases["kind"]) == {kind}
    spec = json.loads(store.run(run_id)["spec_json"])
    assert spec.get("kind") == (kind if spec_kind == "same" else spec_kind)
    return cases
