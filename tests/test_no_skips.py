"""tests/no_skips.py against real pytest runs: a skip fails in CI, except a GPU one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SAMPLE = """
import pytest

def test_plain_skip():
    pytest.skip("fixture not found")

def test_gpu_skip():
    pytest.skip("needs a GPU")

@pytest.mark.xfail(reason="known")
def test_known_failure():
    assert False
"""


@pytest.mark.parametrize(("ci", "failed", "skipped"), [("true", 1, 1), ("", 0, 2)])
def test_a_skip_fails_only_in_ci(tmp_path, ci, failed, skipped):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(TESTS)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no_skips",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    tail = proc.stdout.strip().splitlines()[-1]
    assert (f"{failed} failed" in tail) == bool(failed), proc.stdout
    assert f"{skipped} skipped" in tail and "1 xfailed" in tail, proc.stdout
    assert proc.returncode == (1 if failed else 0)
