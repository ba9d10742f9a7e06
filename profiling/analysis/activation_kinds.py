"""Which trace names are activations: the name tables and the composite patterns of the audit.

Read from real `tf.profiler` captures of Keras 3.15 models on TF 2.21 (oneDNN on and off) under
`tf.function` inference and training, not guessed:

- single ops: `Relu`, `Relu6`, `LeakyRelu`, `Elu`, `Selu`, `Sigmoid`, `Tanh`, `Softplus`,
  `Softsign`; oneDNN runs SiLU as `_MklSwish` and Mish after a MatMul as `_MklFusedMish`;
- Grappler/oneDNN fused kernels (`_FusedConv2D`, `_MklNativeFusedConv2D`,
  `_MklNativeFusedMatMul`) are named after the last op they absorbed: `conv1/Relu`, `elu/Elu`,
  `dense/Gelu/mul_2` (a GELU), `act/mul` (Mish or hard-swish: both end in a `mul`, and the
  trace's args do not carry the fused-ops attribute, so the kind is `unknown` unless the layer's
  name says it);
- composites, the ops of one layer scope: Keras' exact GELU is `Erfc` + `Neg` + 3 `Mul` under
  `<layer>/Gelu/`; the tanh approximation is `Tanh` + `Square` (Grappler rewrites the `Pow`) +
  `Mul`s + `AddV2`s; SiLU without oneDNN is `Sigmoid` + `Mul`; hard_sigmoid is `AddV2` + `Relu6`
  + one scale `Mul` (`truediv`), hard_silu the same times x (a second `Mul`); Mish is `Softplus`
  + `Tanh` + `Mul`; PReLU is `Relu` + `Neg` (or `_UnaryOpsComposition`) + `Mul` + `AddV2`; a
  `tf.where` ReLU is `Greater` + `SelectV2`, a leaky one adds a `Mul`, an ELU an `Exp`/`Expm1`;
- gradients run under `gradient_tape/<forward scope>/` (`ReluGrad`, `SigmoidGrad`, the
  composites' own `Mul`s and `SelectV2`s).

GELU is two kinds: `gelu` (exact, erf) and `gelu_tanh` (the tanh approximation); a GELU fused
into a MatMul reports `gelu`, since the fused kernel's name does not say which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "gelu", "gelu_tanh", "silu",
         "hard_swish", "hard_sigmoid", "mish", "sigmoid", "tanh", "softplus", "softsign",
         "maximum", "where", "unknown")
# ReLUs by spelling: `maximum` = tf.maximum(x, 0) / clamp_min, `where` = tf.where(x > 0, x, 0).
RELU_SPELLINGS = ("maximum", "where")

# TF op types that are one activation each.
SINGLE_OP_KIND = {
    "Relu": "relu", "Relu6": "relu6", "LeakyRelu": "leaky_relu", "Elu": "elu", "Selu": "selu",
    "Gelu": "gelu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus",
    "Softsign": "softsign", "_MklSwish": "silu", "Swish": "silu", "_MklFusedMish": "mish",
    "_MklLeakyRelu": "leaky_relu", "_MklRelu": "relu", "_MklElu": "elu", "_MklRelu6": "relu6",
    "CustomRelu": "relu",
}
GRAD_OP_KIND = {
    "ReluGrad": "relu", "Relu6Grad": "relu6", "LeakyReluGrad": "leaky_relu", "EluGrad": "elu",
    "SeluGrad": "selu", "SigmoidGrad": "sigmoid", "TanhGrad": "tanh",
    "SoftplusGrad": "softplus", "SoftsignGrad": "softsign", "_MklSwishGrad": "silu",
    "_MklReluGrad": "relu", "_MklRelu6Grad": "relu6", "_MklEluGrad": "elu",
    "_MklLeakyReluGrad": "leaky_relu", "CustomReluGrad": "relu",
}
# What a fused kernel's node leaf (its last absorbed op, `_N` stripped, lower case) says.
FUSED_LEAF_KIND = {"relu": "relu", "relu6": "relu6", "leakyrelu": "leaky_relu", "elu": "elu",
                   "selu": "selu", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu",
                   "softplus": "softplus", "swish": "silu", "mish": "mish"}
# A fused kernel's `fused_ops` attribute (where a trace's args carry it), `_Mkl`/`_Fused` and
# case dropped: "[BiasAdd, Relu6]", "[BiasAdd, _MklFusedMish]", "[BiasAdd, GeluApproximate]".
FUSED_OPS_KIND = {"relu": "relu", "relu6": "relu6", "leakyrelu": "leaky_relu", "elu": "elu",
                  "selu": "selu", "sigmoid": "sigmoid", "tanh": "tanh", "swish": "silu",
                  "mish": "mish", "hardswish": "hard_swish", "geluexact": "gelu",
                  "geluapproximate": "gelu_tanh", "gelu": "gelu"}
FUSED_KERNEL_RE = re.compile(r"Fused(?:Conv|MatMul|Depthwise|BatchMatMul)|_FusedConv|_FusedMatMul")
# Hints from a layer's own name where the kernel's name does not say the kind.
LAYER_NAME_HINTS = (("hard_s", "hard_swish"), ("hardswish", "hard_swish"), ("mish", "mish"),
                    ("swish", "silu"), ("silu", "silu"), ("gelu", "gelu"))

# PyTorch (aten::) names; in-place variants (`relu_`) are found by stripping the underscore.
ATEN_KIND = {
    "relu": "relu", "relu6": "relu6", "hardtanh": "relu6", "leaky_relu": "leaky_relu",
    "prelu": "prelu", "_prelu_kernel": "prelu", "rrelu": "leaky_relu", "elu": "elu",
    "celu": "elu", "selu": "selu", "gelu": "gelu", "silu": "silu", "hardswish": "hard_swish",
    "hardsigmoid": "hard_sigmoid", "mish": "mish", "sigmoid": "sigmoid", "tanh": "tanh",
    "softplus": "softplus", "softsign": "softsign", "clamp_min": "maximum", "where": "where",
    "logistic": "sigmoid",
}
ATEN_BACKWARD_KIND = {
    "threshold_backward": "relu", "leaky_relu_backward": "leaky_relu", "elu_backward": "elu",
    "gelu_backward": "gelu", "silu_backward": "silu", "hardswish_backward": "hard_swish",
    "hardsigmoid_backward": "hard_sigmoid", "mish_backward": "mish",
    "sigmoid_backward": "sigmoid", "tanh_backward": "tanh", "softplus_backward": "softplus",
    "hardtanh_backward": "relu6", "_prelu_kernel_backward": "prelu",
}
# Autograd nodes (`ReluBackward0`) are PyTorch's backward of the same kinds.
AUTOGRAD_NODE_KIND = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Elu": "elu", "Gelu": "gelu",
                      "Silu": "silu", "Hardswish": "hard_swish", "Hardsigmoid": "hard_sigmoid",
                      "Mish": "mish", "Sigmoid": "sigmoid", "Tanh": "tanh",
                      "Softplus": "softplus", "Hardtanh": "relu6", "Prelu": "prelu"}
AUTOGRAD_NODE_RE = re.compile(r"^([A-Z][a-z]+)Backward\d+$")

# XLA fusion kernels are named after their ops (`add_maximum_fusion`): name tokens only.
XLA_TOKEN_KIND = {"relu": "relu", "maximum": "maximum", "tanh": "tanh", "logistic": "sigmoid",
                  "erf": "gelu", "exponential-minus-one": "elu", "expm1": "elu"}
XLA_TOKENS_IGNORED = {"broadcast", "constant", "copy", "fusion", "loop", "input", "reduce",
                      "convert", "bitcast", "reshape", "transpose", ""}

# Ops that move no data of their own: never an activation's part nor its input.
BOOKKEEPING_OPS = {"_Arg", "_Retval", "Identity", "NoOp", "Const", "ReadVariableOp",
                   "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp", "IDLE",
                   "Shape", "Reshape", "_Recv", "_Send", ""}
# Scope components Grappler or TF add inside a layer's own scope.
HELPER_SCOPES = {"ArithmeticOptimizer", "clip_by_value"}
DISPLAY_HELPER_SCOPES = HELPER_SCOPES | {"Gelu", "gelu", "LogSigmoid"}
NORMALIZATION_SCOPE_RE = re.compile(r"norm|moments|clip|epsilon", re.I)
GRADIENT_PREFIXES = ("gradient_tape/", "gradients/")


@dataclass(frozen=True)
class Composite:
    """An activation that runs as several ops of one scope.

    needs: op types that must all be in the scope (each a set of alternatives); members: every
    op type that belongs to it (its time is theirs); scale_muls: how many `Mul`/`RealDiv` ops
    the scope must hold (None: any); op: the op type shown as the site's `op`."""

    kind: str
    needs: tuple[frozenset[str], ...]
    members: frozenset[str]
    op: str
    scale_muls: tuple[int, int] | None = None  # (min, max) count of Mul + RealDiv
    forbids: frozenset[str] = frozenset()


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


# First match wins, so the richer patterns come first (hard_swish before hard_sigmoid, mish and
# gelu_tanh before a lone Tanh, leaky/elu before the plain `where`).
COMPOSITES = (
    Composite("gelu", (_f("Erf", "Erfc"), _f("Mul")), _f("Erf", "Erfc", "Mul", "Neg", "AddV2",
                                                         "Add", "RealDiv"), "Erfc"),
    Composite("gelu_tanh", (_f("Tanh"), _f("Pow", "Square"), _f("Mul")),
              _f("Tanh", "Pow", "Square", "Mul", "AddV2", "Add"), "Tanh"),
    Composite("mish", (_f("Softplus"), _f("Tanh"), _f("Mul")), _f("Softplus", "Tanh", "Mul"),
              "Softplus"),
    Composite("hard_swish", (_f("Relu6"), _f("AddV2", "Add"), _f("Mul", "RealDiv")),
              _f("Relu6", "AddV2", "Add", "Mul", "RealDiv"), "Relu6", scale_muls=(2, 3)),
    Composite("hard_sigmoid", (_f("Relu6"), _f("AddV2", "Add"), _f("Mul", "RealDiv")),
              _f("Relu6", "AddV2", "Add", "Mul", "RealDiv"), "Relu6", scale_muls=(1, 1)),
    Composite("silu", (_f("Sigmoid"), _f("Mul")), _f("Sigmoid", "Mul"), "Sigmoid",
              scale_muls=(1, 1)),
    Composite("prelu", (_f("Relu"), _f("Neg", "_UnaryOpsComposition"), _f("Mul"),
                        _f("AddV2", "Add")),
              _f("Relu", "Neg", "_UnaryOpsComposition", "Mul", "AddV2", "Add"), "Relu"),
    Composite("leaky_relu", (_f("Select", "SelectV2"), _f("Greater", "GreaterEqual"), _f("Mul")),
              _f("Select", "SelectV2", "Greater", "GreaterEqual", "Mul"), "SelectV2",
              forbids=_f("Exp", "Expm1")),
    Composite("elu", (_f("Select", "SelectV2"), _f("Greater", "GreaterEqual"), _f("Exp", "Expm1")),
              _f("Select", "SelectV2", "Greater", "GreaterEqual", "Exp", "Expm1", "Sub", "Mul"),
              "SelectV2"),
    Composite("where", (_f("Select", "SelectV2"), _f("Greater", "GreaterEqual")),
              _f("Select", "SelectV2", "Greater", "GreaterEqual", "ZerosLike"), "SelectV2",
              forbids=_f("Mul", "Exp", "Expm1")),
)

# Kernels a fusion could absorb an activation into, and what a layer's input op says.
CONV_OR_MATMUL_RE = re.compile(r"Conv[23]D|Depthwise|MatMul|Einsum|aten::(?:conv|linear|addmm|"
                               r"mm|matmul|mkldnn_conv|_convolution|bmm)", re.I)
# Keras 3 lowers BatchNormalization under `<layer>/batchnorm/` (inference) and `moments` (training)
BATCHNORM_RE = re.compile(r"batch_?norm|(?:^|/)moments/|FusedBatchNorm", re.I)


def strip_index(token: str) -> str:
    """`Relu_3` -> `Relu`: TF numbers repeated node names within a scope."""
    return re.sub(r"_\d+$", "", token)
