"""Variants from outside the registry: modules named by the caller, each with a `VARIANTS` dict
of `relu_impls.Variant`s (profiling reads the module names from RELU_LAB_EXTRA_VARIANTS).

The test suite loads its misbehaving variants (tests/faulty_variants.py) this way, so they never
live in the product. Ids starting with `_` are kept out of the dashboard.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from relu_impls.variants import VARIANTS, Variant


def load(modules: Iterable[str]) -> dict[str, Variant]:
    """id -> Variant from every module's `VARIANTS`; ValueError (one line) when a module cannot
    be imported, holds no dict of Variants, or reuses an id of the registry or of another module."""
    found: dict[str, Variant] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ValueError(f"extra variants module {name!r} cannot be imported: {e}") from None
        variants = getattr(module, "VARIANTS", None)
        if not isinstance(variants, dict) or not all(
                isinstance(v, Variant) and v.id == k for k, v in variants.items()):
            raise ValueError(f"extra variants module {name!r}: accepted: a VARIANTS dict "
                             "mapping each id to its relu_impls.Variant")
        for vid, variant in variants.items():
            if vid in VARIANTS or vid in found:
                raise ValueError(f"extra variants module {name!r}: variant id {vid!r} is taken")
            found[vid] = variant
    return found
