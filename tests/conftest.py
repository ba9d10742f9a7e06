"""Shared test set-up: quiet TensorFlow, locate the fixtures, isolate the data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pg import backend, pg_server, pg_url  # noqa: F401  (PostgreSQL fixtures, tests/pg.py)

pytest_plugins = ["no_skips"]  # tests/no_skips.py: in CI a skip is a failure

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


from helpers import FIXTURES  # noqa: E402 - the one fixture lookup, shared with the tests


@pytest.fixture
def pytorch_trace() -> Path:
    """A real PyTorch CPU Chrome trace (tests/fixtures/pytorch_cpu_trace.json)."""
    path = FIXTURES / "pytorch_cpu_trace.json"
    assert path.exists(), f"fixture {path} not found (set RELU_LAB_FIXTURES)"
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RELU_LAB_DATA directory for one test."""
    path = tmp_path / "relu_lab_data"
    monkeypatch.setenv("RELU_LAB_DATA", str(path))
    return path


@pytest.fixture
def faulty_variants(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Registers tests/faulty_variants.py's crashing, hanging and raising variants through the
    RELU_LAB_EXTRA_VARIANTS hook, in this process and in the workers it starts. Their ids."""
    tests_dir = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("RELU_LAB_EXTRA_VARIANTS", "faulty_variants")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests_dir,
                                                                   os.environ.get("PYTHONPATH")])))
    return ["_test_segfault", "_test_hang", "_test_raise"]
