"""What each variant really does at the edges: NaN, signed zero, infinities, the gradient at 0.

Computed, never typed by hand: `semantics_table()` runs every variant on every dtype it supports.
`python -m relu_impls.semantics` prints the Markdown tables that the README (the variants) and
docs/semantics.md (the edge cases) embed; `--update ROOT` rewrites them under a repository root.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from relu_impls.variants import FLOAT_DTYPES, VARIANTS, Variant, get

SPECIAL_INPUTS: dict[str, float] = {
    "nan": math.nan,
    "neg_zero": -0.0,
    "pos_inf": math.inf,
    "neg_inf": -math.inf,
    "subnormal": 0.0,  # replaced per dtype by its smallest positive subnormal
}
BULK = 64
SMALLEST_SUBNORMAL = {
    "float16": 2.0**-24,
    "bfloat16": 2.0**-133,
    "float32": 2.0**-149,
    "float64": 5e-324,
}
COLUMNS = ["variant", "dtype", *SPECIAL_INPUTS, "grad_at_zero", "bitwise_equal_nn_relu"]


def format_value(value: float) -> str:
    """Short, sign-exact text for one scalar: nan, inf, -inf, -0, 0, 1e-07, 0.01..."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    return f"{value:.3g}"


def _random_input(dtype: str, n: int = 4096, seed: int = 0) -> tf.Tensor:
    rng = np.random.default_rng(seed)
    if dtype == "int8":
        return tf.constant(rng.integers(-128, 128, n, dtype=np.int8))
    values = rng.standard_normal(n).astype(np.float32)
    values[::17] = 0.0  # exact zeros exercise the kink
    return tf.cast(tf.constant(values), dtype)


def _bits(t: tf.Tensor) -> np.ndarray:
    array = t.numpy()
    return array.view(f"u{array.dtype.itemsize}") if array.dtype.kind == "f" else array


def _bitwise_equal_nn_relu(v: Variant, dtype: str) -> bool:
    x = _random_input(dtype)
    ours = get(v.id)(x)
    if ours.dtype != x.dtype:
        return False
    return bool(np.array_equal(_bits(ours), _bits(tf.nn.relu(x))))


def _grad_at_zero(v: Variant, dtype: str) -> float:
    fn = get(v.id)
    x = tf.zeros([1], dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return float(tf.cast(tape.gradient(y, x)[0], tf.float64))


def _row(v: Variant, dtype: str) -> dict[str, object]:
    row: dict[str, object] = {"variant": v.id, "dtype": dtype}
    if dtype == "int8":
        row.update({k: "n/a" for k in SPECIAL_INPUTS}, grad_at_zero="n/a")
    else:
        fn = get(v.id)
        inputs = {**SPECIAL_INPUTS, "subnormal": SMALLEST_SUBNORMAL[dtype]}
        # Each value fills a 64-element vector: what the bulk of a large tensor sees. TF's Relu
        # treats -0.0 and subnormals differently in its scalar tail (see csrc/relu_functor.h).
        block = tf.constant([[v] * BULK for v in inputs.values()], dtype)
        values = tf.cast(fn(block)[:, 0], tf.float64).numpy()
        row.update({k: format_value(float(y)) for k, y in zip(SPECIAL_INPUTS, values, strict=True)})
        row["grad_at_zero"] = format_value(_grad_at_zero(v, dtype))
    row["bitwise_equal_nn_relu"] = _bitwise_equal_nn_relu(v, dtype)
    return row


def semantics_table(variant_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per (variant, dtype): outputs at NaN, -0.0, +inf, -inf and the smallest positive
    subnormal, each as the first element of a 64-element vector (the vectorised bulk of a
    tensor; TF's CPU kernels flush subnormals there, except float16); gradient at exactly 0;
    whether the output is bitwise equal to tf.nn.relu on random data (4096 normals, seed 0).

    A variant that cannot run here (the custom op without a compiler) gets its error in every cell.
    """
    rows = []
    for vid in variant_ids or list(VARIANTS):
        v = VARIANTS[vid]
        for dtype in [d for d in (*FLOAT_DTYPES, "int8") if d in v.dtypes]:
            try:
                rows.append(_row(v, dtype))
            except Exception as err:  # a missing build must not hide the other variants
                reason = f"unavailable: {str(err).splitlines()[0][:80]}"
                rows.append({"variant": vid, "dtype": dtype, **dict.fromkeys(COLUMNS[2:], "-")})
                rows[-1]["nan"] = reason
    return pd.DataFrame(rows, columns=COLUMNS)


def variants_table() -> pd.DataFrame:
    """The registry as a table: id, what it computes, dtypes, parameters, XLA."""
    return pd.DataFrame(
        [
            {
                "variant": v.id,
                "what it is": v.description,
                "dtypes": ", ".join(v.dtypes),
                "parameters": ", ".join(f"{p.name}={p.default:g}" for p in v.params.values())
                or "-",
                "XLA": "yes" if v.xla_compilable else "no (not fusable by XLA)",
            }
            for v in VARIANTS.values()
        ]
    )


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (no extra dependency)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(c) for c in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def generated_sections() -> dict[str, dict[str, str]]:
    """The generated Markdown sections: file (relative to the repository root) -> marker -> body."""
    return {"README.md": {"variants": to_markdown(variants_table())},
            "docs/semantics.md": {"semantics": to_markdown(semantics_table())}}


def update_readme(path: Path, sections: dict[str, str]) -> bool:
    """Replace each `<!-- name:start -->…<!-- name:end -->` block; True if the file changed."""
    text = path.read_text()
    new = text
    for name, body in sections.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        new = pattern.sub(lambda _m, s=start, b=body, e=end: f"{s}\n{b}\n{e}", new)
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, metavar="ROOT",
                        help="rewrite the generated sections of ROOT/README.md and ROOT/docs/")
    args = parser.parse_args(argv)
    files = generated_sections()
    if args.update:
        for name, sections in files.items():
            path = args.update / name
            changed = update_readme(path, sections)
            print(f"{path}: {'updated' if changed else 'already up to date'}")
    else:
        print("\n\n".join(b for sections in files.values() for b in sections.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
