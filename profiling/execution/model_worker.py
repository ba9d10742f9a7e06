"""Isolated process for a user's model: `python -m profiling.execution.model_worker`.

A user's `.keras` file can run code when it loads, so it is opened here, never in the process
that serves the dashboard. Same protocol as `profiling.execution.worker` (JSON lines):
{"cmd": "model", "request": ModelRequest fields} -> {"type": "progress", "current"}… then
{"type": "model", "result"}; {"cmd": "memory", "request", "rewrite"} -> {"type": "memory",
"bytes"}; a request that fails -> {"type": "failed", "reason"} (one line); {"cmd": "exit"}.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

from profiling.execution.worker import _setup_tf, reply_channel, serve

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _handle(send: Any, cmd: str, req: dict) -> dict:
    """One request's reply; progress lines go out through `send` while it runs."""
    from profiling.models.profile import ModelRequest, profile_model, step_peak_memory

    spec = ModelRequest.from_dict(req.get("request") or {})
    if cmd == "model":
        return {"type": "model", "result": profile_model(
            spec, lambda text: send({"type": "progress", "current": text}))}
    if cmd == "memory":
        return {"type": "memory", "bytes": step_peak_memory(spec, req.get("rewrite"))}
    return {"type": "error", "reason": f"unknown command {cmd!r}"}


def main() -> int:
    send = reply_channel()
    _setup_tf()
    serve(send, functools.partial(_handle, send))
    return 0


if __name__ == "__main__":
    sys.exit(main())
