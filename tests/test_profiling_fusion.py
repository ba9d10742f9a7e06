"""Grappler and XLA fusion: nn_relu fuses into the conv/matmul kernel, maximum and the custom
op stay separate ops."""

from __future__ import annotations

import pytest

from profiling.analysis.fusion import hlo_counts
from profiling.execution.fusion_blocks import fusion_report


@pytest.fixture(scope="module")
def report():
    return fusion_report(["nn_relu", "maximum", "custom_op"]).set_index(["variant", "block"])


def test_nn_relu_fuses_into_conv_and_dense(report):
    conv, dense = report.loc[("nn_relu", "conv")], report.loc[("nn_relu", "dense")]
    assert conv.fused and "FusedConv2D" in conv.fused_into and conv.kernels == 1
    assert dense.fused and "FusedMatMul" in dense.fused_into and dense.kernels == 1
    assert conv.time_vs_fused == 1.0


def test_maximum_stays_separate(report):
    conv = report.loc[("maximum", "conv")]
    assert not conv.fused and conv.fused_into is None
    assert conv.kernels == 2  # fused Conv2D+BiasAdd, then Maximum
    assert "Maximum:Maximum" in conv.ops
    assert conv.time_vs_fused > 0


def test_custom_op_stays_separate(report):
    conv = report.loc[("custom_op", "conv")]
    if isinstance(conv.reason, str) and conv.reason:
        pytest.skip(f"custom op unavailable here: {conv.reason}")
    assert not conv.fused and conv.kernels == 2
    assert any(op.endswith(":CustomRelu") for op in conv.ops)


def test_xla_rows(report):
    xla = report.loc[("nn_relu", "xla")]
    assert xla.compiled and xla.hlo_fusions >= 1
    assert xla.instructions_after < xla.instructions_before
    custom = report.loc[("custom_op", "xla")]
    assert not custom.compiled and "XLA" in custom.reason


def test_hlo_counts_by_hand():
    before = """HloModule m
ENTRY %main (a: f32[4]) -> f32[4] {
  %a = f32[4]{0} parameter(0)
  %zero = f32[] constant(0)
  %b = f32[4]{0} broadcast(f32[] %zero), dimensions={}
  ROOT %m = f32[4]{0} maximum(f32[4]{0} %a, f32[4]{0} %b)
}
"""
    after = """HloModule m
%fused_computation (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %x = f32[4]{0} maximum(%p, %p)
}

ENTRY %main (a: f32[4]) -> f32[4] {
  %a = f32[4]{0} parameter(0)
  ROOT %relu_fusion = f32[4]{0} fusion(%a), kind=kLoop, calls=%fused_computation
}
"""
    c = hlo_counts(before, after)
    assert (c["instructions_before"], c["instructions_after"], c["hlo_fusions"]) == (4, 2, 1)
    assert c["fused"] and c["fused_into"] == "relu_fusion" and c["kernels"] == 1


def test_baseline_listed_twice():
    df = fusion_report(["nn_relu", "nn_relu"], blocks=("dense",))
    assert len(df) == 2 and df.time_vs_fused.iloc[0] == 1.0
