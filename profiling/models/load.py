"""Open the user's model: a `.keras`/`.h5` file, a SavedModel directory, or a Keras
Applications architecture by name, and make inputs for it.

Loading a `.keras` file can run code (custom layers, Lambdas), so it happens only in the
isolated worker, always with `safe_mode=True`; `--custom-objects MODULE` imports a module of
the user's that registers their custom layers first. Keras Applications models are built with
seeded random weights (no download), BatchNormalization's moving statistics, gamma and beta
randomised too: Keras initialises them to the identity, where a wrong fold would look right.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

APPLICATIONS_PREFIX = "keras.applications:"


class ModelLoadError(ValueError):
    """A model that cannot be opened or fed; str() is one line."""


@dataclass
class LoadedModel:
    """A model ready to step: `model` (Keras) or `signature` (a SavedModel's serving function),
    its name, the input spec [(name, shape with batch, dtype)], and what it is built from."""

    name: str
    source: str
    input_spec: list[tuple[str, tuple[int, ...], str]]
    model: Any = None
    signature: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_keras(self) -> bool:
        return self.model is not None


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:120]}" if text else type(e).__name__


def import_custom_objects(module: str | None) -> None:
    """Import the user's module that registers custom layers (ModelLoadError naming it)."""
    if not module:
        return
    try:
        importlib.import_module(module)
    except Exception as e:  # the user's code: anything can fail
        raise ModelLoadError(f"--custom-objects {module}: could not import it ({_one_line(e)})"
                             ) from None


def randomise_batchnorm(model: Any, seed: int = 0) -> int:
    """Give every BatchNormalization random moving statistics, gamma and beta; their count."""
    from profiling.models.walk import flat_layers

    rng = np.random.default_rng(seed)
    count = 0
    for layer in flat_layers(model):
        if type(layer).__name__ != "BatchNormalization" or not layer.built:
            continue
        values = []
        for w in layer.weights:
            name = w.path.rsplit("/", 1)[-1]
            shape = tuple(w.shape)
            if "variance" in name:
                values.append(rng.uniform(0.5, 2.0, shape))
            elif "gamma" in name:
                values.append(rng.uniform(0.5, 1.5, shape))
            else:  # beta, moving_mean
                values.append(rng.normal(0.0, 0.5, shape))
        layer.set_weights([v.astype(np.float32) for v in values])
        count += 1
    return count


def _application(name: str, input_shape: tuple[int, ...] | None, seed: int) -> Any:
    import keras

    builder = getattr(keras.applications, name, None)
    if builder is None or not callable(builder) or not name[:1].isupper():
        raise ModelLoadError(f"unknown Keras Applications model {name!r} (e.g. MobileNetV2, "
                             "ResNet50, EfficientNetB0, ConvNeXtTiny)")
    keras.utils.set_random_seed(seed)
    kwargs: dict[str, Any] = {"weights": None}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    try:
        return builder(**kwargs)
    except (ValueError, TypeError) as e:
        raise ModelLoadError(f"keras.applications.{name}: {_one_line(e)}") from None


def open_model(source: str, input_shape: tuple[int, ...] | None = None, batch: int = 1,
               custom_objects: str | None = None, seed: int = 0) -> LoadedModel:
    """Open SOURCE and fix its input spec at `batch` (ModelLoadError with one line)."""
    if batch < 1:
        raise ModelLoadError(f"--batch must be at least 1, got {batch}")
    import_custom_objects(custom_objects)
    notes = []
    if source.startswith(APPLICATIONS_PREFIX):
        name = source[len(APPLICATIONS_PREFIX):].strip()
        model = _application(name, input_shape, seed)
        n = randomise_batchnorm(model, seed)
        notes.append(f"random weights (seed {seed}); {n} BatchNormalization layers with random "
                     "statistics")
        return LoadedModel(name, source, _keras_spec(model, input_shape, batch), model=model,
                           notes=notes)
    path = Path(source)
    if not path.exists():
        raise ModelLoadError(f"{source}: no such file or directory")
    if path.is_dir():
        return _saved_model(path, input_shape, batch)
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError(f"{source}: not a model file (expected .keras, .h5 or a SavedModel "
                             "directory)")
    import keras

    try:
        if path.suffix == ".keras":
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        else:
            model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # corrupt files and unknown layers raise many types
        hint = "" if custom_objects else " (custom layers? name their module with " \
                                          "--custom-objects)"
        raise ModelLoadError(f"{source}: could not load the model{hint}: {_one_line(e)}"
                             ) from None
    return LoadedModel(model.name or path.stem, source, _keras_spec(model, input_shape, batch),
                       model=model)


def _fixed_shape(name: str, shape: tuple, override: tuple[int, ...] | None, batch: int
                 ) -> tuple[int, ...]:
    inner = tuple(override) if override is not None else tuple(shape[1:])
    if override is not None and len(override) != len(shape) - 1:
        raise ModelLoadError(f"--input-shape {','.join(map(str, override))} has {len(override)} "
                             f"dimensions; input {name!r} takes {len(shape) - 1} "
                             f"(shape {tuple(shape)})")
    if any(d is None or d < 1 for d in inner):
        raise ModelLoadError(f"input {name!r} has unknown dimensions {tuple(shape)}: give "
                             "--input-shape, e.g. --input-shape 96,96,3")
    return (batch, *(int(d) for d in inner))


def _keras_spec(model: Any, override: tuple[int, ...] | None, batch: int
                ) -> list[tuple[str, tuple[int, ...], str]]:
    inputs = list(model.inputs or [])
    if not inputs:
        raise ModelLoadError("the model has no defined inputs (a subclassed model never "
                             "called?): save it after building it on an input")
    if override is not None and len(inputs) > 1:
        raise ModelLoadError(f"--input-shape gives one shape; the model has {len(inputs)} inputs")
    return [(getattr(t, "name", f"input_{i}"), _fixed_shape(getattr(t, "name", str(i)),
                                                            tuple(t.shape), override, batch),
             str(getattr(t.dtype, "name", t.dtype))) for i, t in enumerate(inputs)]


def _saved_model(path: Path, override: tuple[int, ...] | None, batch: int) -> LoadedModel:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
    except KeyError:
        raise ModelLoadError(f"{path}: the SavedModel has no serving_default signature") from None
    except Exception as e:
        raise ModelLoadError(f"{path}: not a SavedModel ({_one_line(e)})") from None
    args = signature.structured_input_signature[1]
    if override is not None and len(args) > 1:
        raise ModelLoadError(f"--input-shape gives one shape; the model has {len(args)} inputs")
    spec = [(k, _fixed_shape(k, tuple(v.shape), override, batch), v.dtype.name)
            for k, v in sorted(args.items())]
    return LoadedModel(path.name, str(path), spec, signature=signature,
                       notes=["SavedModel: profiled through serving_default; rewrites need "
                              "Keras layers"])


def random_inputs(spec: list[tuple[str, tuple[int, ...], str]], seed: int = 0) -> list[Any]:
    """Random data of each input's dtype and shape (normal floats, small non-negative ints)."""
    rng = np.random.default_rng(seed)
    out = []
    for _, shape, dtype in spec:
        if "int" in dtype:
            out.append(rng.integers(0, 8, size=shape).astype(dtype))
        elif dtype == "bool":
            out.append(rng.integers(0, 2, size=shape).astype(bool))
        else:
            out.append(rng.normal(size=shape).astype(dtype if dtype != "bfloat16" else "float32"))
    return out


def estimated_bytes(loaded: LoadedModel, batch_spec: list[tuple[str, tuple[int, ...], str]]
                    ) -> int:
    """A rough upper estimate of a step's memory: weights (×3 for a training step's gradients
    and optimizer slot) plus every layer's output at this batch, float32."""
    if not loaded.is_keras:
        return 0
    from profiling.models.walk import flat_layers

    batch = batch_spec[0][1][0] if batch_spec else 1
    params = sum(int(np.prod(w.shape)) for w in loaded.model.weights)
    activations = 0
    for layer in flat_layers(loaded.model):
        try:
            shapes = layer.output.shape if not isinstance(layer.output, list | tuple) else \
                layer.output[0].shape
        except (AttributeError, ValueError):
            continue
        n = int(np.prod([d for d in shapes[1:] if d is not None] or [1]))
        activations += n * batch
    return 4 * (3 * params + activations)


def free_memory_bytes() -> int:
    """Memory available to a new allocation now (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(loaded: LoadedModel, what: str = "the step") -> None:
    """ModelLoadError when the step's estimate exceeds free memory."""
    need = estimated_bytes(loaded, loaded.input_spec)
    free = free_memory_bytes()
    if need > free:
        raise ModelLoadError(f"{loaded.name} at batch {loaded.input_spec[0][1][0]} needs about "
                             f"{need / 2**30:.1f} GiB for {what}, {free / 2**30:.1f} GiB free: "
                             "lower --batch or --input-shape")


