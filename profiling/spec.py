"""Run specification: what to measure, validated and expanded into cases before anything runs."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from profiling import settings
from profiling.measurement.timing import DEFAULT_MIN_TIME, DEFAULT_REPEATS, DEFAULT_WARMUP

MODES = ("eager", "function", "xla")
PASSES = ("forward", "backward")
ALLOCATORS = ("bfc", "default")
DTYPES = ("float16", "bfloat16", "float32", "float64", "int8")
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1}
MEMORY_MARGIN = 2.0  # headroom over the tensors themselves: TF temporaries, allocator slack


class SpecError(ValueError):
    """A bad spec field; str() is one line naming the field, the value and what is accepted."""

    def __init__(self, field: str, value: Any, accepted: Any):
        self.field, self.value, self.accepted = field, value, accepted
        super().__init__(f"invalid {field}: {value!r}; accepted: {accepted}")


def variant_registry() -> dict[str, Any]:
    """relu_impls.VARIANTS plus the variants of the RELU_LAB_EXTRA_VARIANTS modules."""
    import relu_impls
    from relu_impls import extra_variants

    return {**relu_impls.VARIANTS, **extra_variants.load(settings.extra_variant_modules())}


def _parse_number(text: str) -> int:
    value = float(text)
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise ValueError(text)
    return int(value)


def parse_shapes(text: str | Iterable) -> list[tuple[int, ...]]:
    """The one size and shape parser: '1000, 1e6, 64x1024' (or a list of such items and tuples)
    -> [(1000,), (1000000,), (64, 1024)]. An item is an element count or dims joined by x;
    empty items are dropped. SpecError names `sizes` for a bad count, `shapes` for bad dims."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        if not isinstance(item, (list, tuple)):
            item = str(item).strip()
            if not item:
                continue
        dims = tuple(item) if isinstance(item, (list, tuple)) else tuple(item.lower().split("x"))
        try:
            out.append(tuple(_parse_number(str(d)) for d in dims))
        except ValueError:
            if len(dims) == 1 and not isinstance(item, (list, tuple)):
                raise SpecError("sizes", item, "positive integers such as 1000 or 1e6") from None
            raise SpecError("shapes", item, "dims of positive integers joined by x, e.g. 64x1024") from None
    if not out:
        raise SpecError("shapes", text, "a comma-separated list such as 1e6 or 64x1024")
    return out


def parse_sizes(text: str | Iterable) -> list[int]:
    """'1000,1e6' -> [1000, 1000000]: element counts only (parse_shapes, 1-D items)."""
    shapes = parse_shapes(text)
    for shape in shapes:
        if len(shape) != 1:
            raise SpecError("sizes", shape_str(shape), "element counts such as 1000 or 1e6")
    return [shape[0] for shape in shapes]


def shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def split_variants(text: str) -> list[str]:
    """'nn_relu,leaky(alpha=0.2,),clipped:clip=6' -> items, splitting on commas outside ()."""
    from relu_impls import split_variant_list

    return split_variant_list(text)


def parse_variant(spec: str | Mapping) -> dict:
    """'leaky:alpha=0.2', 'leaky(alpha=0.2)' or {"id", "params"} -> {"id": "leaky", "params":
    {"alpha": 0.2}}, checked against variant_registry() by relu_impls.parse_variant_spec."""
    from relu_impls import parse_variant_spec

    registry = variant_registry()
    vid = spec.get("id") if isinstance(spec, Mapping) else re.split(r"[(:]", str(spec))[0].strip()
    if vid not in registry:  # the list of ids is the useful answer here
        raise SpecError("variants", vid, ", ".join(registry))
    try:
        vid, params = parse_variant_spec(spec, registry)
    except (TypeError, ValueError) as e:
        raise SpecError("variants", spec, str(e)) from None
    return {"id": vid, "params": params}


def available_devices() -> list[str]:
    """Devices TensorFlow sees here, e.g. ['CPU:0', 'GPU:0']."""
    import tensorflow as tf

    return [f"{d.device_type}:{i}" for kind in ("CPU", "GPU")
            for i, d in enumerate(tf.config.list_physical_devices(kind))]


def default_device() -> str:
    """Where TensorFlow places an op with no device scope: "GPU:0" when it sees a GPU, else
    "CPU:0"."""
    import tensorflow as tf

    return "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"


@dataclass(frozen=True)
class Case:
    """One measurement: a variant on one shape/dtype/device/mode/pass; skip_reason set when skipped."""

    index: int
    variant: str
    params: dict
    shape: tuple[int, ...]
    dtype: str
    device: str
    threads: int
    allocator: str
    mode: str
    pass_: str
    skip_reason: str | None = None

    @property
    def label(self) -> str:
        return variant_registry()[self.variant].label(self.params)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def config(self) -> tuple[str, int, str]:
        """Worker isolation key: device, intra-op threads, allocator."""
        return (self.device, self.threads, self.allocator)

    def describe(self) -> str:
        return (f"{self.label} {shape_str(self.shape)} {self.dtype} {self.device} t{self.threads} "
                f"{self.mode} {self.pass_}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_json(cls, d: Mapping) -> Case:
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        return cls(**d)


@dataclass
class RunSpec:
    """What to run. Sizes are element counts; times in seconds.

    variants: ids or {"id": ..., "params": {...}}; shapes: tuples; threads: intra-op thread counts;
    min_time: target seconds per repeat (autorange); timeout_s: per case, in the worker;
    baseline: the variant whose paired samples each case's ratio_to_baseline refers to.
    """

    variants: list = field(default_factory=lambda: ["nn_relu"])
    shapes: list = field(default_factory=lambda: [(1000,)])
    dtypes: list = field(default_factory=lambda: ["float32"])
    devices: list | None = None
    threads: list | None = None
    modes: list = field(default_factory=lambda: ["eager", "function"])
    passes: list = field(default_factory=lambda: ["forward"])
    repeats: int = DEFAULT_REPEATS  # n >= 6: the order-statistic CI of the median covers >= 95%
    allocator: str | list = "bfc"
    trace: bool = True
    fusion: bool = False
    timeout_s: float = 120.0
    min_time: float = DEFAULT_MIN_TIME
    warmup: int = DEFAULT_WARMUP
    label: str = ""
    baseline: str = "nn_relu"

    def baseline_variant(self) -> str:
        """The variant id ratios refer to: `baseline` when the run has it, else its first."""
        ids = [v["id"] for v in self.normalized_variants()]
        return self.baseline if self.baseline in ids else ids[0]

    def to_json(self) -> dict:
        d = asdict(self)
        d["shapes"] = [list(s) for s in self.shapes]
        return d

    @classmethod
    def from_json(cls, d: Mapping) -> RunSpec:
        d = dict(d)
        d["shapes"] = [tuple(s) for s in d.get("shapes", [])]
        return cls(**d)

    def normalized_variants(self) -> list[dict]:
        out = [parse_variant(v) for v in self.variants]
        if not out:
            raise SpecError("variants", self.variants, "at least one variant")
        return out

    def validate(self, check_memory: bool = True) -> list[Case]:
        """Check every field and expand to cases; raises SpecError (field, value, accepted)."""
        registry = variant_registry()
        variants = self.normalized_variants()
        shapes = parse_shapes(self.shapes)
        for name, values, accepted in (("dtypes", self.dtypes, DTYPES), ("modes", self.modes, MODES),
                                       ("passes", self.passes, PASSES)):
            if not values:
                raise SpecError(name, values, ", ".join(accepted))
            for value in values:
                if value not in accepted:
                    raise SpecError(name, value, ", ".join(accepted))
        allocators = [self.allocator] if isinstance(self.allocator, str) else list(self.allocator)
        for a in allocators or [None]:
            if a not in ALLOCATORS:
                raise SpecError("allocator", a, ", ".join(ALLOCATORS))
        devices = self.devices or available_devices()
        if self.devices:
            check_devices(devices)
        threads = self.threads or [os.cpu_count() or 1]
        check_threads(threads)
        if not isinstance(self.repeats, int) or not 5 <= self.repeats <= 1000:
            raise SpecError("repeats", self.repeats, "integers 5..1000")
        if not (isinstance(self.min_time, (int, float)) and 0 < self.min_time <= 10):
            raise SpecError("min_time", self.min_time, "seconds in (0, 10]")
        if not (isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s <= 86400):
            raise SpecError("timeout_s", self.timeout_s, "seconds in (0, 86400]")
        if check_memory:
            check_memory_fits(shapes, self.dtypes, self.passes)
        cases = []
        for device in devices:
            for t in threads:
                for alloc in allocators:
                    for v in variants:
                        for shape in shapes:
                            for dtype in self.dtypes:
                                for mode in self.modes:
                                    for p in self.passes:
                                        reason = skip_reason(registry[v["id"]], dtype, mode, p)
                                        cases.append(Case(len(cases), v["id"], v["params"], shape,
                                                          dtype, device, t, alloc, mode, p, reason))
        return cases


def check_devices(devices: Iterable[str], accepted: Iterable[str] | None = None) -> None:
    """The one device check (run, calibrate, scenario): each device once, and each one of
    `accepted` (default: available_devices(), what TensorFlow sees here); SpecError naming the
    first bad one and what is accepted."""
    seen = list(accepted) if accepted is not None else available_devices()
    given: set[str] = set()
    for d in devices:
        if d not in seen:
            raise SpecError("devices", d, ", ".join(seen))
        if d in given:
            raise SpecError("devices", d, "each device once (given twice)")
        given.add(d)


def check_threads(threads: Iterable) -> None:
    """Intra-op thread counts: integers 1..4x the cores; SpecError otherwise."""
    max_threads = 4 * (os.cpu_count() or 1)
    for t in threads:
        if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= max_threads:
            raise SpecError("threads", t, f"integers 1..{max_threads}")


def skip_reason(variant: Any, dtype: str, mode: str, pass_: str) -> str | None:
    """Why a variant cannot run this combination, or None when it can."""
    if dtype not in variant.dtypes:
        return f"{variant.id} does not support {dtype} (supports {', '.join(variant.dtypes)})"
    if mode == "xla" and not variant.xla_compilable:
        return f"{variant.id} is not XLA-compilable"
    if pass_ == "backward" and not variant.differentiable:
        return f"{variant.id} is not differentiable"
    return None


def bytes_needed(numel: int, dtype: str, pass_: str) -> int:
    """Peak bytes of one case: input + output (+ upstream grad + input grad for backward), with margin."""
    tensors = 4 if pass_ == "backward" else 2
    return int(numel * DTYPE_BYTES[dtype] * tensors * MEMORY_MARGIN)


def check_memory_fits(shapes: list[tuple[int, ...]], dtypes: list[str], passes: list[str]) -> None:
    for shape in shapes:
        for dtype in dtypes:
            for p in passes:
                check_fits_in_memory("shapes", shape_str(shape),
                                     bytes_needed(math.prod(shape), dtype, p),
                                     f"shapes whose {dtype} {p} needs")


def check_fits_in_memory(field: str, value: Any, need: int, what: str) -> None:
    """The one up-front memory check (run, scenarios): SpecError(field, value) when `need`
    bytes exceed the memory free now; `what` says whose needs, e.g. "shapes whose float32
    forward needs"."""
    available = psutil.virtual_memory().available
    if need > available:
        raise SpecError(field, value, f"{what} fit in free memory (needs {need / 2**30:.1f} GiB, "
                                      f"{available / 2**30:.1f} GiB available)")
