"""Capturing a `tf.profiler` trace of a callable, in this process (workers, fusion blocks)."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable
from typing import Any

TRACE_STEPS = 3


def capture_trace(tf: Any, call: Callable[[], Any], sync: Callable[[], None], trace_dir: str,
                  steps: int = TRACE_STEPS) -> str:
    """Profile `steps` calls, each in a numbered step; the path of the .xplane.pb written in a
    new folder under trace_dir."""
    logdir = tempfile.mkdtemp(dir=trace_dir)
    tf.profiler.experimental.start(logdir)
    try:
        for i in range(steps):
            with tf.profiler.experimental.Trace("step", step_num=i, _r=1):
                call()
                sync()
    finally:
        tf.profiler.experimental.stop()
    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError("the profiler wrote no .xplane.pb")
    return paths[0]
