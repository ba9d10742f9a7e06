"""Capturing a `tf.profiler` trace of a callable, in this process: the one trace recorder (the
profile workers, the fusion blocks, the scenarios, the guide and distributed workers)."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable
from typing import Any

TRACE_STEPS = 3


def fetch_outputs(out: Any) -> None:
    """Wait for every tensor of `out` (any nest of tensors) by copying it to the host."""
    import tensorflow as tf

    for t in tf.nest.flatten(out):
        t.numpy()


def capture_trace(tf: Any, call: Callable[[], Any], sync: Callable[[], None] | None,
                  trace_dir: str, steps: int = TRACE_STEPS) -> str:
    """Profile `steps` calls, each in a numbered step and ended by `sync` (None: by fetching
    what `call` returned); the path of the .xplane.pb written in a new folder under trace_dir
    (made when missing)."""
    os.makedirs(trace_dir, exist_ok=True)
    logdir = tempfile.mkdtemp(dir=trace_dir)
    tf.profiler.experimental.start(logdir)
    try:
        for i in range(steps):
            with tf.profiler.experimental.Trace("step", step_num=i, _r=1):
                out = call()
                if sync is None:
                    fetch_outputs(out)
                else:
                    sync()
    finally:
        tf.profiler.experimental.stop()
    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError(f"the profiler wrote no .xplane.pb under {logdir}")
    return paths[0]
