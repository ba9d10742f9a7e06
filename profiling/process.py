"""Process plumbing for the `python -m profiling...` children (workers, distributed workers,
capture clients): their environment, exiting with the parent, a free local port."""

from __future__ import annotations

import os
import socket
import threading
import time

PARENT_PID_ENV = "_RELU_LAB_INTERNAL_PARENT_PID"  # internal: set by child_env, read by the child


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a `python -m profiling...` child: this one plus `extra` and this
    process's pid, which `exit_with_parent` in the child watches."""
    env = dict(os.environ, **extra)
    env[PARENT_PID_ENV] = str(os.getpid())
    return env


def exit_with_parent(poll_s: float = 0.5) -> None:
    """In a child started with `child_env`: exit as soon as the parent is gone. The parent kills
    its children on timeout, but a parent that is itself killed (a stopped dashboard, a SIGKILLed
    CLI) runs no cleanup, and a worker waiting on its peers would otherwise wait forever."""
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected:
        return
    if os.getppid() != int(expected):  # the parent died before this process got here
        os._exit(3)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != int(expected):
                os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
