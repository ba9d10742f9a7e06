"""Shared test set-up: quiet TensorFlow, locate the shared fixtures, isolate the data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pg import backend, pg_server, pg_url  # noqa: F401  (PostgreSQL fixtures, tests/pg.py)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def _fixtures_dir() -> Path:
    env = os.environ.get("RELU_LAB_FIXTURES")
    return Path(env) if env else REPO.parent / "shared" / "fixtures"


FIXTURES = _fixtures_dir()


@pytest.fixture
def pytorch_trace() -> Path:
    """The real PyTorch Chrome trace shipped beside the project (../shared/fixtures)."""
    path = FIXTURES / "pytorch_cpu_trace.json"
    if not path.exists():
        pytest.skip(f"fixture {path} not found (set RELU_LAB_FIXTURES)")
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RELU_LAB_DATA directory for one test."""
    path = tmp_path / "relu_lab_data"
    monkeypatch.setenv("RELU_LAB_DATA", str(path))
    return path
