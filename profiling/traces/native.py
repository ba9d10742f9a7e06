"""The traces' native library (csrc/trace_scan.cc, csrc/trace_nesting.cc), built by `make build`
(relu_impls.build.build_scanner) and loaded with ctypes, once. Every caller has a pure
Python/NumPy path for when it is not built."""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_library: ctypes.CDLL | None = None
_loaded = False
_P = ctypes.c_void_p


def _build_module() -> ModuleType:
    """relu_impls/build.py, without relu_impls/__init__ (which imports TensorFlow): build.py
    itself needs only the standard library."""
    spec = importlib.util.find_spec("relu_impls")
    path = Path(next(iter(spec.submodule_search_locations))) / "build.py"
    module_spec = importlib.util.spec_from_file_location("_relu_lab_build", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # (dataclasses look their module up there)
    module_spec.loader.exec_module(module)
    return module


def library_path() -> Path:
    """Where `make build` puts the library for the current sources."""
    return _build_module().scanner_library()


def library() -> ctypes.CDLL | None:
    """The library with its functions' signatures set, loaded once; None when not built."""
    global _library, _loaded
    if not _loaded:
        _loaded = True
        try:
            lib = ctypes.CDLL(str(library_path()))
        except OSError:
            return None
        i64, ptr_i64 = ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)
        for name, restype, argtypes in [
            ("rl_scan_new", _P, []),
            ("rl_scan_free", None, [_P]),
            ("rl_scan_feed", i64, [_P, _P, i64, ctypes.c_int, i64]),
            ("rl_scan_status", ctypes.c_int, [_P]),
            ("rl_scan_why", ctypes.c_char_p, [_P]),
            ("rl_scan_rows", i64, [_P]),
            ("rl_scan_take", _P, [_P, ctypes.c_int, ptr_i64]),
            ("rl_free", None, [_P]),
            ("rl_scan_strings", i64, [_P, ctypes.c_int, ctypes.POINTER(_P), ctypes.POINTER(_P)]),
            ("rl_nesting", ctypes.c_int, [i64, _P, _P, _P, _P, _P, _P]),
            ("rl_exclusive_pieces", i64, [i64, _P, _P, _P, _P, _P, _P]),
        ]:
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        _library = lib
    return _library
