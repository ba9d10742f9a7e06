"""ReLU Lab's implementations: every common way of writing ReLU in TensorFlow.

`VARIANTS` maps id -> `Variant` in a fixed order; `get(id, **params)` returns a validated callable.
"""

from relu_impls.variants import (
    FLOAT_DTYPES,
    VARIANTS,
    AdaptiveRelu,
    Param,
    Variant,
    VariantFn,
    check_dtype,
    get,
    parse_variant_spec,
    parse_variant_text,
    split_variant_list,
    variant,
)

__all__ = [
    "FLOAT_DTYPES",
    "VARIANTS",
    "AdaptiveRelu",
    "Param",
    "Variant",
    "VariantFn",
    "check_dtype",
    "get",
    "parse_variant_spec",
    "parse_variant_text",
    "split_variant_list",
    "variant",
]
