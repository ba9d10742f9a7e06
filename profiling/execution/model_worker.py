"""Isolated process for a user's model: `python -m profiling.execution.model_worker`.

A user's `.keras` file can run code when it loads, so it is opened here, never in the process
that serves the dashboard. Same protocol as `profiling.execution.worker` (JSON lines):
{"cmd": "model", "request": ModelRequest fields} -> {"type": "progress", "current"}… then
{"type": "model", "result"}; {"cmd": "memory", "request", "rewrite"} -> {"type": "memory",
"bytes"}; a request that fails -> {"type": "failed", "reason"} (one line); {"cmd": "exit"}.
"""

from __future__ import annotations

import os
import sys

from profiling.execution.worker import _setup_tf, reply_channel

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    import json

    send = reply_channel()
    _setup_tf()
    from profiling.errors import one_line
    from profiling.models.profile import ModelRequest, profile_model, step_peak_memory

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req.get("cmd")
        if cmd == "exit":
            break
        try:
            spec = ModelRequest.from_dict(req.get("request") or {})
            if cmd == "model":
                result = profile_model(spec, lambda text: send({"type": "progress",
                                                                "current": text}))
                send({"type": "model", "result": result})
            elif cmd == "memory":
                send({"type": "memory", "bytes": step_peak_memory(spec, req.get("rewrite"))})
            else:
                send({"type": "error", "reason": f"unknown command {cmd!r}"})
        except Exception as e:  # the user's model: one line, the worker reports and lives on
            send({"type": "failed", "reason": one_line(e)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
