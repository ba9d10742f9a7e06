"""Model scenarios, the models: their configuration, the ResNet block stack and the Wide & Deep
model with the activation swappable, their synthetic data and training/inference steps.

Design of the ResNet block (so the fusion contrast is visible): ``conv1 (with bias) -> act1`` is the
fusable site; ``conv2 -> BatchNorm -> add(shortcut) -> act_out`` is not (BatchNorm and the add sit
between the conv and the activation). Keras 3 BatchNorm lowers to Mul/Sub/Rsqrt, not
FusedBatchNorm, so Grappler does not fold it into the conv.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("resnet", "wide_deep")


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
    """The model of `cfg` with variant `vid`; the same initial weights for every variant."""
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


def validated_params(vid: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` checked and completed with defaults by the variant (relu_impls)."""
    import relu_impls

    return relu_impls.VARIANTS[vid].validate_params(params)
