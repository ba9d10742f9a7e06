"""Training with a watch on the activations: losses, dead units, exact zeros and storage per
activation layer, the largest per-sample activation norm and gradient norm.

Used by the guide scenarios (profiling.experiments.guide_scenarios); the per-layer arithmetic is
profiling.analysis.activation_stats.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from profiling.analysis import activation_stats as acts
from profiling.experiments.scenarios import ScenarioConfig, activation_sites, synthetic_data


def _probe(model, cfg: ScenarioConfig):
    import keras

    names = [name for name, _ in activation_sites(cfg)]
    return keras.Model(model.inputs, [model.outputs[0]] + [model.get_layer(n).output
                                                          for n in names]), names


def _batches(data, n: int, batch: int) -> list:
    import tensorflow as tf

    x, y = data
    out = []
    for start in range(0, n - batch + 1, batch):
        xb = tf.nest.map_structure(lambda a, s=start: tf.constant(a[s:s + batch]), x)
        out.append((xb, tf.constant(y[start:start + batch])))
    return out or [(tf.nest.map_structure(tf.constant, x), tf.constant(y))]


def train_and_watch(model, cfg: ScenarioConfig, loss_scaling: bool = False) -> dict[str, Any]:
    """Train `cfg.train_steps` mini-batch steps; return the train step (tf.function), losses,
    largest per-sample activation norm and gradient norm, the mean fraction of gradient elements
    that are exactly 0, the steps with a non-finite loss, and, over one pass of the training data
    after training: dead units and exact zeros per activation layer, and accuracy."""
    import keras
    import tensorflow as tf

    probe, names = _probe(model, cfg)
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = probe.trainable_variables

    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            outs = probe(x, training=True)
            loss = loss_fn(y, tf.cast(outs[0], tf.float32))
            scaled = optimizer.scale_loss(loss) if loss_scaling else loss
        grads = tape.gradient(scaled, variables)
        scale = optimizer.scale_loss(tf.constant(1.0)) if loss_scaling else tf.constant(1.0)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, outs[1:], [tf.cast(g, tf.float32) for g in grads], scale

    @tf.function
    def train_step(x, y):
        return forward_backward(x, y)[0]

    @tf.function
    def watch_step(x, y):
        loss, activations, grads, scale = forward_backward(x, y)
        act_norm = tf.reduce_max([tf.reduce_max(tf.norm(tf.reshape(tf.cast(a, tf.float32),
                                                                   [tf.shape(a)[0], -1]), axis=1))
                                  for a in activations])
        zeros = tf.add_n([tf.reduce_sum(tf.cast(g == 0, tf.float32)) for g in grads])
        total = float(sum(int(np.prod(v.shape)) for v in variables))
        return loss, act_norm, tf.linalg.global_norm(grads) / scale, zeros / total

    data = synthetic_data(cfg, cfg.train_samples, cfg.seed + 2)
    batches = _batches(data, cfg.train_samples, cfg.batch)
    losses, act_norms, grad_norms, zero_grads = [], [], [], []
    for i in range(cfg.train_steps):
        x, y = batches[i % len(batches)]
        loss, act_norm, grad_norm, zero_grad = (float(v) for v in watch_step(x, y))
        losses.append(loss)
        act_norms.append(act_norm)
        grad_norms.append(grad_norm)
        zero_grads.append(zero_grad)

    # One pass over the training data after training: dead units, zeros, storage, accuracy.
    outputs = [[] for _ in names]
    correct = 0
    for x, y in batches:
        outs = probe(x, training=False)
        correct += int(np.sum(np.argmax(np.asarray(outs[0], dtype=np.float32), axis=1)
                              == y.numpy()))
        for keep, a in zip(outputs, outs[1:], strict=True):
            keep.append(np.asarray(a))
    layers = []
    for name, parts in zip(names, outputs, strict=True):
        a = np.concatenate(parts)
        peaks = acts.unit_peaks(a)
        layers.append({"layer": name, "units": int(peaks.size), "dead_units": acts.dead_units(peaks),
                       "zero_fraction": acts.zero_fraction(a), "dtype": a.dtype.name,
                       **acts.storage_bytes(a)})
    finite = [v for v in losses if math.isfinite(v)]
    n_seen = sum(int(y.shape[0]) for _, y in batches)
    return {
        "train_step": train_step, "batch": batches[0], "losses": losses,
        "initial_loss": losses[0] if losses else math.nan,
        "final_loss": losses[-1] if losses else math.nan,
        "nonfinite_steps": len(losses) - len(finite),
        "max_activation_norm": _finite_max(act_norms), "max_grad_norm": _finite_max(grad_norms),
        "zero_grad_fraction": float(np.mean(zero_grads)) if zero_grads else math.nan,
        "accuracy": correct / n_seen if n_seen else math.nan,
        "layers": pd.DataFrame(layers),
    }


def _finite_max(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else math.nan


def dead_fraction(layers: pd.DataFrame) -> float:
    """Dead units / units over every activation layer (0..1)."""
    units = layers["units"].sum() if len(layers) else 0
    return float(layers["dead_units"].sum() / units) if units else math.nan
