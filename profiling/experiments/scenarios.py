"""Model scenarios: a ResNet block stack and a Wide & Deep model with the activation swappable.

For each ReLU variant `run_scenario` measures the training step and the inference step (both
`tf.function`; profiling.measurement.timing.measure, median with its 95% CI, seconds), reads from a profiler trace of the inference
step which activations Grappler fused into the preceding Conv2D/MatMul (`_FusedConv2D`,
`_MklNativeFusedConv2D`, `_FusedMatMul`...), and trains every variant on the same tiny synthetic
task from the same initial weights so their losses can be compared.

Design of the ResNet block (so the fusion contrast is visible): ``conv1 (with bias) -> act1`` is the
fusable site; ``conv2 -> BatchNorm -> add(shortcut) -> act_out`` is not (BatchNorm and the add sit
between the conv and the activation). Keras 3 BatchNorm lowers to Mul/Sub/Rsqrt, not
FusedBatchNorm, so Grappler does not fold it into the conv.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from profiling.errors import one_line
from profiling.measurement.stats import unpaired_ratio
from profiling.spec import default_device
from profiling.tempdirs import temp_dir_unless
from profiling.traces import trace_file_breakdown
from profiling.traces.breakdown import store_breakdown

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("resnet", "wide_deep")
FUSED_OP = re.compile(r"Fused(?:Conv2D|MatMul|DepthwiseConv2dNative|Conv3D)")


class ScenarioError(ValueError):
    """Bad scenario input; the message is one line naming the field, value and what is accepted."""


# --- configuration ---------------------------------------------------------------------------


@dataclass
class ScenarioConfig:
    """What to run. Sizes are tiny by default so a run takes seconds on a laptop CPU.

    variants: ids or {"id": ..., "params": {...}} (relu_impls.VARIANTS ids)
    repeats: timed samples per step kind (profiling.measurement.timing.measure); each sample is the mean
      of as many calls as fill `min_time` seconds (at least one)
    train_steps, train_samples: the loss sanity check (full batch of train_samples, Adam)
    """

    model: str = "resnet"
    variants: list[Any] = field(default_factory=lambda: ["nn_relu", "maximum", "where"])
    batch: int = 16
    image_size: int = 16
    channels: int = 16
    blocks: int = 2
    dense_features: int = 8
    categorical_features: int = 4
    vocab: int = 32
    embedding_dim: int = 8
    hidden: tuple[int, ...] = (64, 32)
    classes: int = 2
    repeats: int = 7
    min_time: float = 0.05
    warmup: int = 2
    train_steps: int = 40
    train_samples: int = 256
    learning_rate: float = 0.01
    trace: bool = True
    seed: int = 0
    guide_block: bool = False  # the guide's block: conv1 -> BatchNorm -> act1 (see build_resnet)
    fake_quant: bool = False  # QAT: fake_quant_with_min_max_vars around every activation

    def validate(self) -> list[tuple[str, dict[str, Any]]]:
        """Check fields; return the variants as (id, params). ScenarioError on bad input."""
        if self.model not in MODELS:
            raise ScenarioError(f"model={self.model!r}; accepted: {', '.join(MODELS)}")
        for name in ("batch", "image_size", "channels", "blocks", "dense_features",
                     "categorical_features", "vocab", "embedding_dim", "repeats",
                     "train_steps", "train_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScenarioError(f"{name}={value!r}; accepted: an integer >= 1")
        if self.repeats > 1000:  # run's bound too
            raise ScenarioError(f"repeats={self.repeats!r}; accepted: 1..1000")
        if not (0 <= self.min_time <= 10):
            raise ScenarioError(f"min_time={self.min_time!r}; accepted: seconds in [0, 10]")
        if self.warmup < 0:
            raise ScenarioError(f"warmup={self.warmup!r}; accepted: an integer >= 0")
        if self.classes < 2:
            raise ScenarioError(f"classes={self.classes!r}; accepted: an integer >= 2")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ScenarioError(f"hidden={self.hidden!r}; accepted: one or more widths >= 1")
        if not (0 < self.learning_rate < 10):
            raise ScenarioError(f"learning_rate={self.learning_rate!r}; accepted: (0, 10)")
        variants = [parse_variant(v) for v in self.variants] or _no_variants()
        _check_once(variants)
        check_memory(self, max(self.batch, self.train_samples), self.batch + self.train_samples)
        return variants


def training_numel(cfg: ScenarioConfig, step_batch: int, data_samples: int) -> int:
    """Float32 elements a training run of `cfg` holds at its peak, an estimate for the up-front
    memory check: `data_samples` synthetic inputs (drawn as float64 first, so three times), the
    activations one step of `step_batch` keeps for its backward pass, and the weights with
    their gradients and two Adam moments."""
    if cfg.model == "resnet":
        pixels = cfg.image_size ** 2
        per_block = 7 if cfg.guide_block else 6  # conv1, [bn1], act1, conv2, bn2, add, act_out
        kept = step_batch * pixels * cfg.channels * (2 + per_block * cfg.blocks)
        inputs = data_samples * pixels * 3
        weights = (27 + cfg.classes) * cfg.channels + cfg.blocks * 18 * cfg.channels ** 2
    else:
        widths = [cfg.dense_features + cfg.categorical_features * cfg.embedding_dim,
                  *(int(h) for h in cfg.hidden)]
        kept = step_batch * (widths[0] + 2 * sum(widths[1:]))
        inputs = data_samples * (cfg.dense_features + cfg.categorical_features)
        weights = (sum(a * b for a, b in zip(widths, widths[1:], strict=False))
                   + cfg.vocab * cfg.embedding_dim
                   + (cfg.dense_features + cfg.vocab + widths[-1]) * cfg.classes)
    return kept + 3 * inputs + 4 * weights


def check_memory(cfg: ScenarioConfig, step_batch: int, data_samples: int,
                 processes: int = 1) -> None:
    """ScenarioError (one line) when `processes` training runs of `cfg` (training_numel) cannot
    fit in the memory free now: spec.check_fits_in_memory, with spec.bytes_needed's forward
    pair (each kept tensor and its gradient) and margin."""
    from profiling.spec import SpecError, bytes_needed, check_fits_in_memory

    sizes = (f"batch={step_batch} image_size={cfg.image_size} channels={cfg.channels} "
             f"blocks={cfg.blocks}" if cfg.model == "resnet" else
             f"batch={step_batch} hidden={','.join(str(h) for h in cfg.hidden)}")
    need = processes * bytes_needed(training_numel(cfg, step_batch, data_samples), "float32",
                                    "forward")
    try:
        check_fits_in_memory("sizes", f"{sizes} samples={data_samples}", need,
                             "sizes whose training needs")
    except SpecError as exc:
        raise ScenarioError(str(exc)) from None


def parse_hidden(text: str) -> tuple[int, ...]:
    """'64, 32' -> (64, 32): the Wide & Deep tower widths; ScenarioError if not integers."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ScenarioError(f"hidden={text!r}; accepted: comma-separated integers such as 64,32"
                            ) from None


def _check_once(variants: list[tuple[str, dict[str, Any]]]) -> None:
    # results are keyed by label: a variant given twice would mix its samples and traces
    import relu_impls

    labels = [relu_impls.VARIANTS[vid].label(params) for vid, params in variants]
    for label in labels:
        if labels.count(label) > 1:
            raise ScenarioError(f"variants: {label!r} given twice; accepted: each variant once")


def _no_variants() -> list:
    raise ScenarioError("variants=[]; accepted: one or more relu_impls variant ids")


def parse_variant(spec: Any) -> tuple[str, dict[str, Any]]:
    """`"leaky"`, `"leaky(alpha=0.2)"` or `{"id": "leaky", "params": {"alpha": 0.2}}`
    -> (id, params) by relu_impls.parse_variant_spec; ScenarioError on an unknown id or a bad
    parameter."""
    import relu_impls

    try:
        return relu_impls.parse_variant_spec(spec)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(str(exc)) from None


def unsupported_reason(vid: str) -> str | None:
    """Why variant `vid` cannot run in a float32 Keras model here, or None if it can."""
    import relu_impls

    variant = relu_impls.VARIANTS[vid]
    if vid == "int8":
        return None  # runs through fake quantization (relu_impls.quantized.FakeQuantActivation)
    if "float32" not in variant.dtypes:
        return f"{vid} takes {'/'.join(variant.dtypes)} tensors; the models are float32"
    if not variant.differentiable:
        return f"{vid} is not differentiable; the scenario trains the model"
    if variant.needs_build:
        try:
            from relu_impls import custom_op
        except ImportError:
            return "relu_impls.custom_op is not there yet"
        if not custom_op.is_available():
            return "custom op library not built: run `make build`"
    return None


# --- models ----------------------------------------------------------------------------------


def activation_layer(vid: str, params: dict[str, Any], name: str, fake_quant: bool = False):
    """A Keras layer applying the variant (relu_impls.keras_layer.ReluActivation); with
    `fake_quant`, and always for int8, wrapped in fake quantization
    (relu_impls.quantized.FakeQuantActivation: the int8 ReLU on the int8 grid)."""
    if fake_quant or vid == "int8":
        from relu_impls.quantized import FakeQuantActivation

        return FakeQuantActivation(vid, params=dict(params), name=name)
    from relu_impls.keras_layer import ReluActivation

    return ReluActivation(vid, params=dict(params), name=name)


def build_resnet(vid: str, params: dict[str, Any], cfg: ScenarioConfig):
    """Stem conv + `blocks` residual blocks + global pool + dense classifier.

    Activation layers are named `stem_act`, `block{i}_act1` (directly after a conv with bias:
    fusable) and `block{i}_act_out` (after BatchNorm and the residual add: not fusable). With
    `cfg.guide_block` the block is the guide's: conv1 (no bias) -> BatchNorm -> act1, so act1
    follows a BatchNorm (site kind "post_bn").
    """
    import keras

    inputs = keras.Input((cfg.image_size, cfg.image_size, 3), name="image")
    x = keras.layers.Conv2D(cfg.channels, 3, padding="same", name="stem_conv")(inputs)
    x = activation_layer(vid, params, "stem_act", cfg.fake_quant)(x)
    for i in range(cfg.blocks):
        shortcut = x
        y = keras.layers.Conv2D(cfg.channels, 3, padding="same", use_bias=not cfg.guide_block,
                                name=f"block{i}_conv1")(x)
        if cfg.guide_block:
            y = keras.layers.BatchNormalization(name=f"block{i}_bn1")(y)
        y = activation_layer(vid, params, f"block{i}_act1", cfg.fake_quant)(y)
        y = keras.layers.Conv2D(cfg.channels, 3, padding="same", use_bias=False,
                                name=f"block{i}_conv2")(y)
        y = keras.layers.BatchNormalization(name=f"block{i}_bn2")(y)
        x = keras.layers.Add(name=f"block{i}_add")([y, shortcut])
        x = activation_layer(vid, params, f"block{i}_act_out", cfg.fake_quant)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(cfg.classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="resnet_blocks")


def build_wide_deep(vid: str, params: dict[str, Any], cfg: ScenarioConfig):
    """Wide: linear over dense features and one-hot ids. Deep: embeddings + Dense/activation tower.

    Activation layers are named `deep{i}_act` (directly after a Dense with bias: fusable).
    """
    import keras

    dense_in = keras.Input((cfg.dense_features,), name="dense")
    ids_in = keras.Input((cfg.categorical_features,), dtype="int32", name="ids")
    one_hot = keras.layers.CategoryEncoding(cfg.vocab, output_mode="multi_hot", name="wide_ids")
    wide = keras.layers.Concatenate(name="wide_in")([dense_in, one_hot(ids_in)])
    wide = keras.layers.Dense(cfg.classes, name="wide_linear")(wide)
    emb = keras.layers.Embedding(cfg.vocab, cfg.embedding_dim, name="embedding")(ids_in)
    deep = keras.layers.Concatenate(name="deep_in")([keras.layers.Flatten()(emb), dense_in])
    for i, width in enumerate(cfg.hidden):
        deep = keras.layers.Dense(int(width), name=f"deep{i}_dense")(deep)
        deep = activation_layer(vid, params, f"deep{i}_act", cfg.fake_quant)(deep)
    deep = keras.layers.Dense(cfg.classes, name="deep_logits")(deep)
    outputs = keras.layers.Add(name="logits")([wide, deep])
    return keras.Model([dense_in, ids_in], outputs, name="wide_deep")


def activation_sites(cfg: ScenarioConfig) -> list[tuple[str, str]]:
    """(layer name, kind) of every activation: "conv"/"dense" directly after the conv/matmul,
    "post_bn" after a BatchNorm (guide block), "post_add" after the residual add."""
    if cfg.model == "resnet":
        sites = [("stem_act", "conv")]
        act1 = "post_bn" if cfg.guide_block else "conv"
        for i in range(cfg.blocks):
            sites += [(f"block{i}_act1", act1), (f"block{i}_act_out", "post_add")]
        return sites
    return [(f"deep{i}_act", "dense") for i in range(len(cfg.hidden))]


def synthetic_data(cfg: ScenarioConfig, n: int, seed: int):
    """A learnable task: (inputs, integer labels). Same data for every variant (seeded)."""
    rng = np.random.default_rng(seed)
    if cfg.model == "resnet":
        x = rng.normal(size=(n, cfg.image_size, cfg.image_size, 3)).astype("float32")
        # class = which of the first `classes` channel-means, plus a pattern, is largest
        score = x.mean(axis=(1, 2)) @ rng.normal(size=(3, cfg.classes))
        return x, score.argmax(axis=1).astype("int32")
    dense = rng.normal(size=(n, cfg.dense_features)).astype("float32")
    ids = rng.integers(0, cfg.vocab, size=(n, cfg.categorical_features)).astype("int32")
    table = rng.normal(size=(cfg.vocab, cfg.classes))
    score = dense @ rng.normal(size=(cfg.dense_features, cfg.classes)) + table[ids].sum(axis=1)
    return (dense, ids), score.argmax(axis=1).astype("int32")


def build_model(vid: str, params: dict[str, Any], cfg: ScenarioConfig):
    import keras

    keras.utils.set_random_seed(cfg.seed)  # same initial weights for every variant
    return build_resnet(vid, params, cfg) if cfg.model == "resnet" else build_wide_deep(
        vid, params, cfg
    )


def make_steps(model, cfg: ScenarioConfig):
    """(train_step(x, y) -> loss, infer_step(x) -> logits), both tf.function."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def infer_step(x):
        return model(x, training=False)

    return train_step, infer_step


# --- measurement -----------------------------------------------------------------------------


def measure_step(fn: Callable, args: Sequence, repeats: int, min_time: float, warmup: int):
    """Time `fn(*args)` with profiling.measurement.timing.measure (each batch ends by fetching the last
    output). Returns (Timing, SampleStats): samples in seconds per call, median and its 95% CI."""
    from profiling.measurement.stats import summarize_samples
    from profiling.measurement.timing import measure

    last: list = [None]

    def call() -> None:
        last[0] = fn(*args)

    timing = measure(call, sync=lambda: _sync(last[0]), repeats=repeats, min_time=min_time,
                     warmup=max(1, warmup))
    return timing, summarize_samples(timing.samples)


def _sync(out) -> None:
    import tensorflow as tf

    for t in tf.nest.flatten(out):
        t.numpy()


def profile_calls(fn: Callable, args: Sequence, calls: int, logdir: str) -> str:
    """Run `fn` `calls` times under tf.profiler; return the .xplane.pb path written."""
    import tensorflow as tf

    tf.profiler.experimental.start(logdir)
    try:
        for _ in range(calls):
            _sync(fn(*args))
    finally:
        tf.profiler.experimental.stop()
    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    if not paths:
        raise RuntimeError(f"profiler wrote no .xplane.pb under {logdir}")
    return paths[-1]


# --- trace analysis --------------------------------------------------------------------------


def op_stats(xplane_path: str | os.PathLike) -> pd.DataFrame:
    """TF op statistics of one .xplane.pb (profiling.traces.framework_op_stats, via xprof).

    Columns: op_name, op_type, occurrences, self_time_us, total_time_us, device.
    """
    from profiling.traces import framework_op_stats

    return framework_op_stats(xplane_path)


def fusion_sites(stats: pd.DataFrame, sites: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Per activation site: did its op run inside a fused conv/matmul kernel?

    Grappler names a fused node after the last op it absorbed, so a site whose op name appears
    with a `...Fused(Conv2D|MatMul)` op type was fused; otherwise the op types that ran under the
    layer's name scope are the activation's own kernels.
    Columns: site, kind, fused, fused_into, kernels, self_time_us.
    """
    rows = []
    for site, kind in sites:
        scope = re.compile(rf"(?:^|/){re.escape(site)}(?:_\d+)?/")
        mine = stats[stats["op_name"].astype(str).str.contains(scope)]
        fused = mine[mine["op_type"].astype(str).str.contains(FUSED_OP)]
        own = mine[~mine["op_type"].astype(str).str.contains(FUSED_OP)]
        rows.append({
            "site": site,
            "kind": kind,
            "fused": bool(len(fused)),
            "fused_into": ",".join(sorted(set(fused["op_type"]))),
            "kernels": ",".join(sorted(set(own["op_type"]))),
            "self_time_us": float(own["self_time_us"].sum()),
        })
    return pd.DataFrame(rows, columns=["site", "kind", "fused", "fused_into", "kernels",
                                       "self_time_us"])


# --- the run ---------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """Everything one scenario run measured (DataFrames; times in seconds unless *_us)."""

    config: dict[str, Any]
    summary: pd.DataFrame   # one row per variant (see SUMMARY_COLUMNS)
    samples: pd.DataFrame   # variant, label, step (train|inference), repeat, seconds
    fusion: pd.DataFrame    # variant, label, site, kind, fused, fused_into, kernels, self_time_us
    losses: pd.DataFrame    # variant, label, step, loss
    device: str = "CPU:0"   # where the steps ran (spec.default_device)
    trace_paths: dict[str, str] = field(default_factory=dict)  # label -> inference .xplane.pb
    op_stats: dict[str, pd.DataFrame] = field(default_factory=dict)  # label -> inference op stats
    run_id: str | None = None


SUMMARY_COLUMNS = [
    "variant", "label", "status", "reason", "train_median_s", "train_iqr_s", "train_ci95_low_s",
    "train_ci95_high_s", "train_number", "infer_median_s", "infer_iqr_s", "infer_ci95_low_s",
    "infer_ci95_high_s", "infer_number", "fusable_sites", "fused_sites", "fused_into", "activation_kernels",
    "initial_loss", "final_loss", "loss_vs_baseline", "params", "learned",
]


def run_scenario(
    cfg: ScenarioConfig,
    on_progress: Callable[[int, int, str], None] | None = None,
    trace_dir: str | None = None,
    store: Any = None,
) -> ScenarioResult:
    """Measure every variant of `cfg` (see module docstring). ScenarioError on bad input.

    int8 runs through fake quantization. A variant that cannot run here (unbuilt custom op) gets
    status "skipped" and a reason;
    one that fails gets status "failed" and the one-line error. With a `profiling.storage.store.Store`
    the result is also saved as a run (see `save_scenario`). Without a `trace_dir` the traces go
    to a temp dir removed before returning: `trace_paths` then names the stored copies (with a
    store) or is empty.
    """
    variants = cfg.validate()
    with temp_dir_unless(trace_dir, "scenario") as where:
        result = _run_variants(cfg, variants, on_progress, where)
        if store is not None:
            result.run_id = save_scenario(result, store)
        if not trace_dir:
            result.trace_paths = _stored_trace_paths(store, result.run_id)
    return result


def _stored_trace_paths(store: Any, run_id: str | None) -> dict[str, str]:
    """label -> the stored inference trace of each variant of a saved scenario run."""
    if store is None or run_id is None:
        return {}
    cases = store.cases([run_id])
    paths = {row["label"]: store.trace_path(row["case_id"])
             for row in cases[cases["pass"] == "inference"].to_dict("records")}
    return {label: str(path) for label, path in paths.items() if path is not None}


def _run_variants(cfg: ScenarioConfig, variants: list, on_progress: Any,
                  trace_dir: str) -> ScenarioResult:
    import relu_impls

    summary, samples, fusion, losses, traces, stats = [], [], [], [], {}, {}
    for done, (vid, params) in enumerate(variants):
        label = relu_impls.VARIANTS[vid].label(params)
        if on_progress:
            on_progress(done, len(variants), label)
        row = dict.fromkeys(SUMMARY_COLUMNS)
        row.update(variant=vid, label=label, params=json.dumps(_validated(vid, params)))
        reason = unsupported_reason(vid)
        if reason:
            row.update(status="skipped", reason=reason)
            summary.append(row)
            continue
        try:
            _measure_variant(vid, params, label, cfg, trace_dir, row, samples, fusion, losses,
                             traces, stats)
            row.update(status="ok", reason="")
        except Exception as exc:  # one variant failing must not lose the others' results
            row.update(status="failed", reason=one_line(exc))
        summary.append(row)
    if on_progress:
        on_progress(len(variants), len(variants), "done")
    summary_df = pd.DataFrame(summary, columns=SUMMARY_COLUMNS)
    _add_loss_vs_baseline(summary_df)
    result = ScenarioResult(
        config=_config_dict(cfg),
        summary=summary_df,
        samples=pd.DataFrame(samples, columns=["variant", "label", "step", "repeat", "seconds"]),
        fusion=pd.DataFrame(fusion, columns=["variant", "label", "site", "kind", "fused",
                                             "fused_into", "kernels", "self_time_us"]),
        losses=pd.DataFrame(losses, columns=["variant", "label", "step", "loss"]),
        device=default_device(),
        trace_paths=traces,
        op_stats=stats,
    )
    return result


def _measure_variant(vid, params, label, cfg, trace_dir, row, samples, fusion, losses, traces,
                     stats):
    import tensorflow as tf

    model = build_model(vid, params, cfg)
    x, y = synthetic_data(cfg, cfg.batch, cfg.seed + 1)
    x = tf.nest.map_structure(tf.constant, x)
    y = tf.constant(y)
    train_step, infer_step = make_steps(model, cfg)

    # Loss sanity check first, so its trajectory starts from the shared initial weights.
    tx, ty = synthetic_data(cfg, cfg.train_samples, cfg.seed + 2)
    tx = tf.nest.map_structure(tf.constant, tx)
    ty = tf.constant(ty)
    history = [float(train_step(tx, ty)) for _ in range(cfg.train_steps)]
    losses += [(vid, label, i, v) for i, v in enumerate(history)]
    row.update(initial_loss=history[0], final_loss=history[-1], learned=_learned(model))

    for step, fn, args in (("train", train_step, (x, y)), ("inference", infer_step, (x,))):
        timing, st = measure_step(fn, args, cfg.repeats, cfg.min_time, cfg.warmup)
        samples += [(vid, label, step, i, float(v)) for i, v in enumerate(timing.samples)]
        key = "train" if step == "train" else "infer"
        row.update({f"{key}_median_s": st.median_s, f"{key}_iqr_s": st.iqr_s,
                    f"{key}_ci95_low_s": st.ci95_low_s, f"{key}_ci95_high_s": st.ci95_high_s,
                    f"{key}_number": timing.number})

    if cfg.trace:
        logdir = os.path.join(trace_dir, re.sub(r"[^A-Za-z0-9_.-]+", "_", label))
        path = profile_calls(infer_step, (x,), 2, logdir)
        traces[label] = path
        stats[label] = op_stats(path)
        sites = fusion_sites(stats[label], activation_sites(cfg))
        fusable = sites[sites["kind"] != "post_add"]
        row.update(
            fusable_sites=len(fusable),
            fused_sites=int(fusable["fused"].sum()),
            fused_into=",".join(sorted({k for k in fusable["fused_into"] if k})),
            activation_kernels=",".join(sorted({k for ks in sites["kernels"] for k in
                                                ks.split(",") if k})),
        )
        for rec in sites.to_dict("records"):
            fusion.append({"variant": vid, "label": label, **rec})


def input_shape_text(cfg: ScenarioConfig) -> str:
    """The per-step input shape, e.g. "16x16x16x3" (ResNet) or "16x8+16x4" (Wide & Deep)."""
    if cfg.model == "resnet":
        return f"{cfg.batch}x{cfg.image_size}x{cfg.image_size}x3"
    return f"{cfg.batch}x{cfg.dense_features}+{cfg.batch}x{cfg.categorical_features}"


def input_numel(cfg: ScenarioConfig) -> int:
    """Elements of one step's input (ResNet: the image batch; Wide & Deep: dense + ids)."""
    if cfg.model == "resnet":
        return cfg.batch * cfg.image_size * cfg.image_size * 3
    return cfg.batch * (cfg.dense_features + cfg.categorical_features)


def process_settings() -> tuple[int, str]:
    """(intra-op threads, allocator) this process runs with: TensorFlow's intra-op setting (its
    default 0 means one per CPU, so the CPU count), and "bfc" or "default" as the runner sets
    them through TF_CPU_ALLOCATOR_USE_BFC."""
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1
    bfc = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("true", "1")
    return int(threads), "bfc" if bfc else "default"


def scenario_case(run_id: str, case_id: str, idx: int, *, variant: str, variant_params: str,
                  label: str, shape: str, numel: int | None, dtype: str, device: str, mode: str,
                  pass_: str, samples: Sequence[float], number: int | None, status: str = "ok",
                  reason: str = "", trace_sha256: str | None = None) -> dict[str, Any]:
    """A store case row (kind "scenario") whose median, IQR and 95% CI come from `samples`
    (seconds per call, profiling.measurement.stats.summarize_samples); empty samples leave them None."""
    from profiling.measurement.stats import summarize_samples

    threads, allocator = process_settings()
    row: dict[str, Any] = {
        "run_id": run_id, "case_id": case_id, "idx": idx, "variant": variant,
        "threads": threads, "allocator": allocator,
        "variant_params": variant_params, "label": label, "shape": shape, "numel": numel,
        "dtype": dtype, "device": device, "mode": mode, "pass": pass_, "status": status,
        "reason": reason, "n_samples": len(samples), "number": number,
        "trace_sha256": trace_sha256, "kind": "scenario",
    }
    if len(samples):
        st = summarize_samples(samples)
        row.update(median_s=st.median_s, min_s=st.min_s, iqr_s=st.iqr_s,
                   ci95_low_s=st.ci95_low_s, ci95_high_s=st.ci95_high_s, ci95_s=st.ci95_s)
    return row


def save_scenario(result: ScenarioResult, store: Any, label: str = "") -> str:
    """Save as a store run: a case per variant and step (pass "train"/"inference", mode
    "function"), samples, the inference trace, its op stats and one fusion row per activation
    site (block conv|dense, kernels = separate activation kernels). Returns the run id."""
    cfg = result.config
    scfg = ScenarioConfig(**{**cfg, "hidden": tuple(cfg["hidden"])})
    shape, numel = input_shape_text(scfg), input_numel(scfg)
    baseline = result.summary[result.summary["variant"] == "nn_relu"]
    base_infer = _infer_stats(baseline.iloc[0]) if len(baseline) else None
    with store.saving_run(cfg, label=label or f"scenario {cfg['model']}",
                          n_cases=2 * len(result.summary), kind="scenario") as run_id:
        idx = 0
        for row in result.summary.to_dict("records"):
            for step, key in (("train", "train"), ("inference", "infer")):
                case_id = f"{run_id}-{idx:03d}"
                part = result.samples[(result.samples["label"] == row["label"])
                                      & (result.samples["step"] == step)]["seconds"]
                trace = result.trace_paths.get(row["label"]) if step == "inference" else None
                sha = store.put_trace(Path(trace).read_bytes(), Path(trace).name) \
                    if trace else None
                stats = result.op_stats.get(row["label"]) if step == "inference" else None
                store.add_case(
                    scenario_case(run_id, case_id, idx, variant=row["variant"],
                                  variant_params=row["params"], label=row["label"], shape=shape,
                                  numel=numel, dtype="float32", device=result.device,
                                  mode="function", pass_=step, samples=list(part),
                                  number=row[f"{key}_number"], status=row["status"],
                                  reason=row["reason"], trace_sha256=sha),
                    samples=list(part),
                    op_stats=stats,
                    breakdown=None if stats is None or not trace else
                    store_breakdown(trace_file_breakdown(trace)),
                )
                if step == "inference":
                    sites = result.fusion[result.fusion["label"] == row["label"]]
                    own = _infer_stats(row)
                    # variants are timed one after another here, not interleaved: the
                    # ratio's CI comes from the two medians' CIs (stats.unpaired_ratio)
                    ratio = unpaired_ratio(base_infer, own) if base_infer and own else None
                    if len(sites):
                        store.add_fusion(run_id, pd.DataFrame({
                            "case_id": case_id, "variant": row["variant"],
                            "block": sites["kind"].replace({"post_add": "conv"}),
                            "fused": sites["fused"], "fused_into": sites["fused_into"],
                            "kernels": [len([k for k in ks.split(",") if k])
                                        for ks in sites["kernels"]],
                            "time_s": row["infer_median_s"],
                            "time_ci95_low_s": row.get("infer_ci95_low_s"),
                            "time_ci95_high_s": row.get("infer_ci95_high_s"),
                            "time_vs_fused": ratio.ratio if ratio else None,
                            "ratio_ci95_low": ratio.ci95_low if ratio else None,
                            "ratio_ci95_high": ratio.ci95_high if ratio else None,
                            "compiled": False,
                            "reason": [f"site {s} ({k}); kernels: {ks or '-'}" for s, k, ks in
                                       zip(sites["site"], sites["kind"], sites["kernels"],
                                           strict=True)],
                        }))
                idx += 1
    return run_id


def _infer_stats(row: Any) -> dict | None:
    """The inference step's median and CI of a summary row, as stats.unpaired_ratio takes them."""
    values = {k: row.get(f"infer_{k}") for k in ("median_s", "ci95_low_s", "ci95_high_s")}
    if any(v is None or pd.isna(v) for v in values.values()):
        return None
    return {**values, "n_samples": 0}


def _learned(model) -> str:
    """Learned activation parameters after training, e.g. the adaptive slope (over channels)."""
    found: dict[str, list[float]] = {}
    for var in model.weights:
        name = getattr(var, "path", None) or var.name
        leaf = name.rsplit("/", 1)[-1].split(":")[0]
        if leaf in ("alpha", "slope") and "act" in name:
            found.setdefault(leaf, []).extend(np.ravel(np.asarray(var)).tolist())
    return "; ".join(f"{k} mean={np.mean(v):.4g} (min {np.min(v):.4g}, max {np.max(v):.4g})"
                     for k, v in found.items())


def _validated(vid: str, params: dict[str, Any]) -> dict[str, Any]:
    import relu_impls

    return relu_impls.VARIANTS[vid].validate_params(params)


def _add_loss_vs_baseline(summary: pd.DataFrame, baseline: str = "nn_relu") -> None:
    ok = summary[(summary["status"] == "ok") & summary["final_loss"].notna()]
    base = ok[ok["variant"] == baseline]
    ref = base["final_loss"].iloc[0] if len(base) else (
        ok["final_loss"].min() if len(ok) else math.nan)
    summary["loss_vs_baseline"] = [
        (float(v) / ref if ref and not math.isnan(ref) and v is not None else math.nan)
        for v in summary["final_loss"]
    ]


def _config_dict(cfg: ScenarioConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["hidden"] = list(cfg.hidden)
    return d
