"""A scenario's training step under tf.distribute: MirroredStrategy and MultiWorkerMirroredStrategy.

Every run happens in fresh worker processes (`python -m profiling.experiments.distributed --worker ...`):
logical CPU devices must be configured before TensorFlow initialises, and each
MultiWorkerMirroredStrategy worker is its own process with its own TF_CONFIG on 127.0.0.1.
Each worker times its training steps, traces a few with tf.profiler and splits the op self time
into compute and collective communication (CollectiveReduceV2, NcclAllReduce, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from profiling.process import child_env, exit_with_parent, free_port
from profiling.storage.run_writer import RunWriter, case_id

STRATEGIES = ("mirrored", "multiworker")
COMMUNICATIONS = ("AUTO", "RING", "NCCL")
WORKER_COLUMNS = [
    "worker", "strategy", "replicas", "devices", "step_median_s", "step_iqr_s",
    "step_ci95_low_s", "step_ci95_high_s", "step_ci95_s", "step_samples", "compute_us",
    "collective_us", "memcpy_us", "idle_us", "other_us", "collective_fraction",
    "collective_thread_us", "final_loss", "xplane_path",
]


class DistributedError(RuntimeError):
    """A distributed run failed or timed out; the message is one line."""


@dataclass
class DistributedConfig:
    """One distributed run of a scenario's training step.

    devices: MirroredStrategy devices such as ["GPU:0", "GPU:1"]; None = every GPU, or
      `logical_cpus` logical CPU devices where there is no GPU.
    workers: MultiWorkerMirroredStrategy worker processes on 127.0.0.1.
    global_batch: examples per step over all replicas. steps: timed steps; trace_steps: traced.
    timeout_s: wall-clock limit for the whole run (seconds); workers are killed after it.
    """

    strategy: str = "mirrored"
    model: str = "resnet"
    variant: str = "nn_relu"
    devices: list[str] | None = None
    logical_cpus: int = 2
    workers: int = 2
    communication: str = "AUTO"
    global_batch: int = 16
    image_size: int = 8
    channels: int = 8
    blocks: int = 1
    steps: int = 5
    warmup: int = 2
    trace_steps: int = 2
    threads: int = 0
    timeout_s: float = 120.0

    def validate(self) -> None:
        """ScenarioError-style one-line ValueError on bad input."""
        from profiling.experiments.scenarios import (
            ScenarioConfig,
            ScenarioError,
            check_memory,
            parse_variant,
        )

        if self.strategy not in STRATEGIES:
            raise ScenarioError(f"strategy={self.strategy!r}; accepted: {', '.join(STRATEGIES)}")
        if self.communication.upper() not in COMMUNICATIONS:
            raise ScenarioError(
                f"communication={self.communication!r}; accepted: {', '.join(COMMUNICATIONS)}"
            )
        for name, low in (("logical_cpus", 1), ("workers", 2), ("global_batch", 1),
                          ("steps", 1), ("trace_steps", 1), ("image_size", 1), ("channels", 1),
                          ("blocks", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ScenarioError(f"{name}={value!r}; accepted: an integer >= {low}")
        for name, high in (("workers", 8), ("logical_cpus", 64), ("steps", 1000),
                           ("trace_steps", 100)):
            if getattr(self, name) > high:
                low = 2 if name == "workers" else 1
                raise ScenarioError(f"{name}={getattr(self, name)!r}; accepted: {low}..{high}")
        if not 1 <= self.timeout_s <= 3600:
            raise ScenarioError(f"timeout_s={self.timeout_s!r}; accepted: 1..3600 seconds")
        parse_variant(self.variant)
        if self.devices is not None:
            self._check_devices()
        # each worker draws 4 global batches of data and steps on its share of one
        check_memory(ScenarioConfig(model=self.model, image_size=self.image_size,
                                    channels=self.channels, blocks=self.blocks),
                     self.global_batch, 4 * self.global_batch,
                     processes=self.workers if self.strategy == "multiworker" else 1)

    def _check_devices(self) -> None:
        """MirroredStrategy's devices: ones TensorFlow sees here, or, when all are CPUs, the
        logical CPUs the worker makes for them (CPU:0..CPU:n-1); spec.check_devices."""
        from profiling.experiments.scenarios import ScenarioError
        from profiling.spec import SpecError, available_devices, check_devices

        if self.strategy != "mirrored":
            raise ScenarioError(f"devices={self.devices!r} with strategy={self.strategy!r}; "
                                "--devices applies to --strategy mirrored")
        if not self.devices:
            raise ScenarioError("devices=[]; accepted: one or more devices, e.g. GPU:0,GPU:1")
        cpus_only = all("CPU" in d.upper() for d in self.devices)
        try:
            check_devices(self.devices, [f"CPU:{i}" for i in range(len(self.devices))]
                          if cpus_only else available_devices())
        except SpecError as exc:
            raise ScenarioError(str(exc)) from None


@dataclass
class DistributedResult:
    """Per worker: step time (s) and compute vs collective self time (µs) from its trace."""

    config: dict[str, Any]
    workers: pd.DataFrame          # WORKER_COLUMNS
    op_stats: pd.DataFrame         # worker, op_type, op_name, category, self_time_us
    out_dir: str = ""
    logs: dict[int, str] = field(default_factory=dict)
    run_id: str | None = None


def run_distributed(cfg: DistributedConfig, out_dir: str | None = None,
                    store: Any = None) -> DistributedResult:
    """Run `cfg` in worker subprocesses (bounded by cfg.timeout_s); DistributedError on failure.

    With a `profiling.storage.store.Store` the result is also saved (see `save_distributed`). Without an
    `out_dir` the workers write to a temp dir removed before returning: `xplane_path` then names
    the stored trace (with a store) or is None, and `logs` keeps the workers' output."""
    from profiling.tempdirs import temp_dir_unless

    cfg.validate()
    with temp_dir_unless(out_dir, "dist") as where:
        result = _run_in(cfg, Path(where), store, keep_logs=bool(out_dir))
        if not out_dir:
            result.out_dir = ""
            result.workers["xplane_path"] = [
                _stored_path(store, case_id(result.run_id, int(w))) if result.run_id else None
                for w in result.workers["worker"]]
    return result


def _stored_path(store: Any, case_id: str) -> str | None:
    path = store.trace_path(case_id) if store is not None else None
    return str(path) if path else None


def _run_in(cfg: DistributedConfig, out: Path, store: Any, keep_logs: bool) -> DistributedResult:
    out.mkdir(parents=True, exist_ok=True)
    n = cfg.workers if cfg.strategy == "multiworker" else 1
    ports = [free_port() for _ in range(n)]
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for index in range(n):
            env = child_env(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
            if cfg.strategy == "multiworker":
                env["TF_CONFIG"] = json.dumps({
                    "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                    "task": {"type": "worker", "index": index},
                })
            else:
                env.pop("TF_CONFIG", None)
            log = open(out / f"worker{index}.log", "w")  # noqa: SIM115 (closed in finally)
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "profiling.experiments.distributed", "--worker",
                 json.dumps(asdict(cfg)), "--index", str(index), "--out", str(out)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))
        deadline = time.monotonic() + cfg.timeout_s
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"{cfg.strategy} run did not finish within {cfg.timeout_s:g} s; "
                    f"workers killed" + (f" (logs in {out})" if keep_logs else "")
                )
            failed = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
            if failed:
                break
            time.sleep(0.1)
    finally:
        killed = set()  # stopped by us once a peer failed: the peer's error is the one to show
        for i, p in enumerate(procs):
            if p.poll() is None:
                p.kill()
                killed.add(i)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
        for log in logs:
            log.close()
    texts = {i: (out / f"worker{i}.log").read_text(errors="replace") for i in range(n)}
    for i, p in sorted(enumerate(procs), key=lambda ip: ip[0] in killed):
        if p.returncode != 0:
            raise DistributedError(
                f"{cfg.strategy} worker {i} failed (exit {p.returncode}): {_last_error(texts[i])}"
            )
    rows, stats = [], []
    for i in range(n):
        result = json.loads((out / f"worker{i}.json").read_text())
        rows.append({k: result.get(k) for k in WORKER_COLUMNS})
        stats += [{"worker": i, **r} for r in result["op_stats"]]
    result = DistributedResult(
        config=asdict(cfg),
        workers=pd.DataFrame(rows, columns=WORKER_COLUMNS),
        op_stats=pd.DataFrame(stats, columns=["worker", "op_type", "op_name", "category",
                                              "self_time_us"]),
        out_dir=str(out),
        logs=texts,
    )
    if store is not None:
        result.run_id = save_distributed(result, store)
    return result


def save_distributed(result: DistributedResult, store: Any) -> str:
    """Save as a store run: one case per worker (mode = strategy, pass "train") with its step
    samples' summary, trace, op stats and compute/collective breakdown. Returns the run id."""
    from profiling.traces import framework_op_stats
    from profiling.traces.breakdown import store_breakdown

    cfg = result.config
    shape = (f"{cfg['global_batch']}x{cfg['image_size']}x{cfg['image_size']}x3"
             if cfg["model"] == "resnet" else str(cfg["global_batch"]))
    with RunWriter(store, "distributed", cfg,
                   label=f"{cfg['strategy']} {cfg['model']} {cfg['variant']}",
                   n_cases=len(result.workers)) as w:
        for row in result.workers.to_dict("records"):
            w.add(w.case(int(row["worker"]), cfg["variant"],
                         label=f"{cfg['variant']} worker {row['worker']}", shape=shape,
                         device=row["devices"], mode=cfg["strategy"], pass_="train",
                         reason="", samples=row["step_samples"], number=1,
                         trace=row["xplane_path"], op_stats=framework_op_stats(row["xplane_path"]),
                         breakdown=store_breakdown(row)))
        return w.run_id


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "error" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else "no output"


# --- worker process --------------------------------------------------------------------------


def _worker(cfg: DistributedConfig, index: int, out: Path) -> None:
    import tensorflow as tf

    if cfg.strategy == "mirrored":
        # Logical CPU devices stand in for several accelerators; this must precede TF's start-up.
        cpu_devices = cfg.devices is not None and all("CPU" in d.upper() for d in cfg.devices)
        if cpu_devices or (cfg.devices is None and not tf.config.list_physical_devices("GPU")):
            count = len(cfg.devices) if cfg.devices else cfg.logical_cpus
            tf.config.set_logical_device_configuration(
                tf.config.list_physical_devices("CPU")[0],
                [tf.config.LogicalDeviceConfiguration() for _ in range(count)],
            )
    if cfg.threads:
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
        tf.config.threading.set_inter_op_parallelism_threads(cfg.threads)

    import keras

    from profiling.experiments.scenarios import (
        ScenarioConfig,
        build_model,
        op_stats,
        parse_variant,
        synthetic_data,
    )
    from profiling.measurement.stats import summarize_samples
    from profiling.measurement.timing import measure
    from profiling.traces import trace_file_breakdown
    from profiling.traces.breakdown import store_breakdown
    from profiling.traces.classify import op_type_kind
    from profiling.traces.record import capture_trace

    if cfg.strategy == "mirrored":
        devices = cfg.devices or (
            [d.name for d in tf.config.list_logical_devices("GPU")]
            or [d.name for d in tf.config.list_logical_devices("CPU")]
        )
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        impl = tf.distribute.experimental.CommunicationImplementation[cfg.communication.upper()]
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=impl
            )
        )
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or ["/CPU:0"]

    vid, params = parse_variant(cfg.variant)
    scfg = ScenarioConfig(model=cfg.model, variants=[cfg.variant], image_size=cfg.image_size,
                          channels=cfg.channels, blocks=cfg.blocks)
    with strategy.scope():
        model = build_model(vid, params, scfg)
        optimizer = keras.optimizers.SGD(0.01)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    x, y = synthetic_data(scfg, cfg.global_batch * 4, seed=1)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(cfg.global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(ds.with_options(options)))

    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            per_example = loss_fn(labels, model(inputs, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=cfg.global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def train_step():
        inputs, labels = next(iterator)
        per_replica = strategy.run(replica_step, args=(inputs, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    # one step per sample, fixed: every worker must run the same steps or the collectives hang
    timing = measure(lambda: train_step().numpy(), repeats=cfg.steps, warmup=cfg.warmup,
                     number=1)
    step = summarize_samples(timing.samples)
    xplane = capture_trace(tf, train_step, None, str(out / f"trace_worker{index}"),
                           steps=cfg.trace_steps)
    stats = op_stats(xplane)
    whole = trace_file_breakdown(xplane)  # the one classifier's numbers, as trace-summary's
    breakdown = store_breakdown(whole)
    # wall collective time is what compute did not hide; the thread time is all of it
    breakdown["collective_thread_us"] = whole["thread_time"]["collective_us"]
    busy = breakdown["compute_us"] + breakdown["collective_us"]
    breakdown["collective_fraction"] = breakdown["collective_us"] / busy if busy else 0.0
    final_loss = float(train_step())
    result = {
        "worker": index,
        "strategy": cfg.strategy,
        "replicas": int(strategy.num_replicas_in_sync),
        "devices": ",".join(devices),
        "step_median_s": step.median_s,
        "step_iqr_s": step.iqr_s,
        "step_ci95_low_s": step.ci95_low_s,
        "step_ci95_high_s": step.ci95_high_s,
        "step_ci95_s": step.ci95_s,
        "step_samples": timing.samples,
        **breakdown,
        "final_loss": final_loss,
        "xplane_path": xplane,
        "op_stats": [
            {"op_type": t, "op_name": n, "category": op_type_kind(str(t)), "self_time_us": s}
            for t, n, s in zip(stats["op_type"], stats["op_name"], stats["self_time_us"],
                               strict=True)
        ],
    }
    (out / f"worker{index}.json").write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="internal: one distributed worker process")
    parser.add_argument("--worker", required=True, help="DistributedConfig as JSON")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    exit_with_parent()
    _worker(DistributedConfig(**json.loads(args.worker)), args.index, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
