"""Variants that misbehave on purpose, for the isolation tests: they crash, hang or raise in a
worker. Loaded only through RELU_LAB_EXTRA_VARIANTS=faulty_variants (see the conftest fixture
`faulty_variants`), never part of relu_impls.VARIANTS; the leading `_` keeps them off the
dashboard.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Any

from relu_impls import FLOAT_DTYPES, Variant


def _segfault() -> Callable:
    def fn(x: Any) -> Any:
        ctypes.string_at(0)  # null dereference: SIGSEGV in the worker
        return x

    return fn


def _hang() -> Callable:
    def fn(x: Any) -> Any:
        while True:
            time.sleep(3600)

    return fn


def _raise() -> Callable:
    def fn(x: Any) -> Any:
        raise RuntimeError("test variant raised on purpose")

    return fn


VARIANTS = {
    v.id: v
    for v in (
        Variant("_test_segfault", "segfault", "dereferences NULL: the worker dies of SIGSEGV",
                _segfault, dtypes=FLOAT_DTYPES, xla_compilable=False, differentiable=False),
        Variant("_test_hang", "hang", "sleeps forever: the runner's timeout must fire",
                _hang, dtypes=FLOAT_DTYPES, xla_compilable=False, differentiable=False),
        Variant("_test_raise", "raise", "raises RuntimeError on every call",
                _raise, dtypes=FLOAT_DTYPES, xla_compilable=False, differentiable=False),
    )
}
