"""Variants that misbehave on purpose, registered only when RELU_LAB_TEST_VARIANTS=1.

They exist so the isolation tests can crash or hang a worker; they are never part of
relu_impls.VARIANTS.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass, field
from typing import Any

ENV_FLAG = "RELU_LAB_TEST_VARIANTS"


def enabled() -> bool:
    return os.environ.get(ENV_FLAG) == "1"


def _segfault(x: Any) -> Any:
    ctypes.string_at(0)  # null dereference: SIGSEGV in the worker
    return x


def _hang(x: Any) -> Any:
    while True:
        time.sleep(3600)


def _raise(x: Any) -> Any:
    raise RuntimeError("test variant raised on purpose")


@dataclass(frozen=True)
class TestVariant:
    id: str
    fn: Any
    dtypes: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
    params: dict = field(default_factory=dict)
    xla_compilable: bool = False
    differentiable: bool = False
    needs_build: bool = False
    fuses_with_conv: bool = False

    def make(self, **params: Any) -> Any:
        return self.fn

    def label(self, params: Any = None) -> str:
        return self.id


TEST_VARIANTS = {
    v.id: v
    for v in (
        TestVariant("_test_segfault", _segfault),
        TestVariant("_test_hang", _hang),
        TestVariant("_test_raise", _raise),
    )
}
