"""profiling.errors.one_line: the one formatter behind the CLI, the worker, scenarios and pages."""

from __future__ import annotations

import tensorflow as tf

from profiling.errors import one_line
from profiling.spec import SpecError


def test_a_tf_graph_error_keeps_its_message_and_drops_the_embedded_stack():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])  # fails when it runs
    def gather(x):
        return tf.gather(x, [5])

    try:
        gather(tf.constant([1.0, 2.0, 3.0]))
    except tf.errors.InvalidArgumentError as e:
        assert "File " in str(e) and "\n" in str(e)  # what TF hands us: a stack
        text = one_line(e)
    assert text == "InvalidArgumentError: indices[0] = 5 is not in [0, 3)"


def test_a_tracing_error_keeps_the_message_after_in_user_code():
    @tf.function
    def reshape(x):
        return tf.reshape(x, [2])

    try:
        reshape(tf.constant([1, 2, 3]))
    except ValueError as e:
        assert "in user code:" in str(e)
        text = one_line(e, limit=1000)
    assert text.startswith("ValueError: Cannot reshape a tensor with 3 elements to shape [2]")
    assert "File " not in text and "return tf.reshape" not in text


def test_an_eager_tf_error_loses_the_function_node_prefix():
    try:
        tf.reshape(tf.constant([1, 2, 3]), [2])
    except tf.errors.InvalidArgumentError as e:
        text = one_line(e)
    assert text.startswith("InvalidArgumentError: Input to reshape is a tensor with 3 values")
    assert "function_node" not in text


def test_type_name_only_where_the_message_needs_it():
    assert one_line(KeyError("x")) == "KeyError: 'x'"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert one_line(SpecError("sizes", "lots", "positive integers")) == (
        "invalid sizes: 'lots'; accepted: positive integers")
    assert one_line(ValueError("first\n  second")) == "first second"


def test_long_messages_are_capped_with_an_ellipsis():
    text = one_line(RuntimeError("x" * 1000), limit=50)
    assert len(text) == 50 and text.endswith("…") and text.startswith("RuntimeError: xxx")
