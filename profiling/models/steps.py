"""One step of a model as a zero-argument callable: inference, or a training step (SGD).

The training loss fits the output: sparse categorical cross-entropy for a softmax head,
binary cross-entropy for a sigmoid head, mean squared error otherwise, against targets drawn
once from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MODES = ("inference", "train")


def _head(model: Any) -> str:
    last = model.layers[-1] if getattr(model, "layers", None) else None
    name = getattr(getattr(last, "activation", None), "__name__", "")
    return name if name in ("softmax", "sigmoid") else "linear"


def targets(model: Any, outputs: Sequence[Any], seed: int = 1) -> list[Any]:
    """Targets of the outputs' shapes that the loss of `_head` accepts."""
    rng = np.random.default_rng(seed)
    head = _head(model)
    out = []
    for y in outputs:
        shape = tuple(y.shape)
        if head == "softmax":
            out.append(rng.integers(0, shape[-1], size=shape[:-1]).astype("int32"))
        elif head == "sigmoid":
            out.append(rng.integers(0, 2, size=shape).astype("float32"))
        else:
            out.append(rng.normal(size=shape).astype("float32"))
    return out


def loss_fn(model: Any) -> Callable[[Any, Any], Any]:
    import keras

    head = _head(model)
    if head == "softmax":
        return keras.losses.SparseCategoricalCrossentropy()
    if head == "sigmoid":
        return keras.losses.BinaryCrossentropy()
    return keras.losses.MeanSquaredError()


def _as_list(y: Any) -> list[Any]:
    return list(y) if isinstance(y, list | tuple) else [y]


def _model_inputs(xs: Sequence[Any]) -> Any:
    return xs[0] if len(xs) == 1 else list(xs)


def _training_loss(model: Any, ys: Sequence[Any]) -> Callable[[Sequence[Any]], Any]:
    """xs -> the summed loss of the model's training-mode outputs against `ys` (float32)."""
    import tensorflow as tf

    loss = loss_fn(model)

    def value(xs: Sequence[Any]) -> Any:
        out = _as_list(model(_model_inputs(xs), training=True))
        return tf.add_n([loss(y, tf.cast(o, tf.float32)) for y, o in zip(ys, out, strict=True)])

    return value


def inference_step(model: Any, jit_compile: bool = False) -> Any:
    """tf.function(model(x, training=False)), XLA-compiled when asked."""
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def step(*xs: Any) -> Any:
        return model(_model_inputs(xs), training=False)

    return step


def loss_and_gradients(model: Any, ys: Sequence[Any], jit_compile: bool = False) -> Any:
    """tf.function returning (loss, gradients of the trainable weights), nothing applied."""
    import tensorflow as tf

    loss = _training_loss(model, ys)

    @tf.function(jit_compile=jit_compile)
    def step(*xs: Any) -> Any:
        with tf.GradientTape() as tape:
            value = loss(xs)
        return value, tape.gradient(value, model.trainable_weights)

    return step


def train_step(model: Any, ys: Sequence[Any], jit_compile: bool = False,
               learning_rate: float = 0.01) -> Any:
    """tf.function of one SGD step (forward, loss, gradients, update); returns the loss."""
    import keras
    import tensorflow as tf

    loss = _training_loss(model, ys)
    optimizer = keras.optimizers.SGD(learning_rate)
    optimizer.build(model.trainable_weights)

    @tf.function(jit_compile=jit_compile)
    def step(*xs: Any) -> Any:
        with tf.GradientTape() as tape:
            value = loss(xs)
        grads = tape.gradient(value, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        return value

    return step


def outputs_of(y: Any) -> list[np.ndarray]:
    """A step's outputs as float64 arrays (bfloat16 and float16 widened)."""
    import tensorflow as tf

    flat = tf.nest.flatten(y)
    return [np.asarray(tf.cast(t, tf.float64)) if t is not None else np.zeros(1) for t in flat]


def difference(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]
               ) -> tuple[float, float]:
    """(max |Δ|, max |Δ| / max |reference|) over all outputs: relative to the largest output,
    so outputs near zero do not inflate it. (inf, inf) when shapes differ."""
    if len(reference) != len(other) or any(a.shape != b.shape for a, b in zip(reference, other,
                                                                                strict=True)):
        return float("inf"), float("inf")
    if not reference:
        return 0.0, 0.0
    delta = max(float(np.max(np.abs(a - b))) if a.size else 0.0
                for a, b in zip(reference, other, strict=True))
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0 for a in reference)
    return delta, (delta / scale if scale > 0 else (0.0 if delta == 0 else float("inf")))
