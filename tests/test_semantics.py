"""Pinned edge-case semantics (measured on TF 2.21) and the README's generated tables."""

from __future__ import annotations

import pytest
import tensorflow as tf
from helpers import REPO

from relu_impls import semantics

# variant -> (NaN in, -0.0 in, -inf in, gradient at 0) for float32
PINNED = {
    "where": ("0", "0", "0", "0"),
    "maximum": ("nan", "0", "0", "1"),
    "nn_relu": ("nan", "0", "0", "0"),
    "keras": ("nan", "0", "0", "0"),
    "mixed_precision": ("nan", "0", "0", "0"),
    "stable": ("nan", "1e-07", "1e-07", "0"),
    "clipped": ("nan", "0", "0", "0"),
    "leaky": ("nan", "-0", "-inf", "0.01"),
    "adaptive": ("nan", "0", "-inf", "0"),
    "adaptive_stats": ("nan", "0", "-inf", "0"),
}


@pytest.fixture(scope="module")
def table():
    return semantics.semantics_table([v for v in semantics.VARIANTS if v != "custom_op"])


@pytest.mark.parametrize("variant_id", list(PINNED))
def test_pinned_float32_semantics(table, variant_id):
    row = table[(table.variant == variant_id) & (table.dtype == "float32")].iloc[0]
    assert (row.nan, row.neg_zero, row.neg_inf, row.grad_at_zero) == PINNED[variant_id]


def test_only_exact_relus_are_bitwise_equal(table):
    equal = table.groupby("variant").bitwise_equal_nn_relu.all()
    assert equal["nn_relu"] and equal["maximum"] and equal["keras"] and equal["int8"]
    assert not equal["stable"] and not equal["leaky"] and not equal["adaptive"]
    assert not equal["adaptive_stats"]


def test_relu_sign_of_zero_depends_on_dtype_and_position(table):
    # Measured on TF 2.21: the vectorised bulk of float32 Relu turns -0.0 into +0.0 while the
    # scalar tail keeps -0.0; 16-bit dtypes keep -0.0 everywhere.
    rows = table[table.variant == "nn_relu"].set_index("dtype")
    assert rows.loc["float32", "neg_zero"] == "0"
    assert rows.loc["float16", "neg_zero"] == "-0"
    tail = tf.nn.relu(tf.constant([-0.0], tf.float32)).numpy()[0]
    assert semantics.format_value(float(tail)) == "-0"


def test_subnormals_flush_to_zero_except_float16(table):
    rows = table[table.variant == "nn_relu"].set_index("dtype")
    assert rows.loc["float32", "subnormal"] == "0"
    assert rows.loc["float16", "subnormal"] == "5.96e-08"


def test_every_supported_dtype_has_a_row(table):
    for vid, v in semantics.VARIANTS.items():
        if vid != "custom_op":
            assert sorted(table[table.variant == vid].dtype) == sorted(v.dtypes)


@pytest.mark.parametrize(
    ("value", "text"),
    [(float("nan"), "nan"), (-0.0, "-0"), (0.0, "0"), (float("-inf"), "-inf"), (0.01, "0.01")],
)
def test_format_value_keeps_sign(value, text):
    assert semantics.format_value(value) == text


@pytest.mark.parametrize("name", ["README.md", "docs/semantics.md"])
def test_generated_tables_are_current(tmp_path, name):
    """README.md and docs/semantics.md embed the tables `make readme` writes."""
    sections = semantics.generated_sections()[name]
    text = (REPO / name).read_text()
    assert all(f"<!-- {m}:start -->" in text for m in sections), f"{name} lost a marker"
    copy = tmp_path / "copy.md"
    copy.write_text(text)
    changed = semantics.update_readme(copy, sections)
    assert not changed, f"{name} tables are stale: run `make readme`"
