"""Process plumbing for the `python -m profiling...` children (workers, distributed workers,
capture clients): their environment, exiting with the parent, a free local port, and whether a
process (a run's, a temp dir's owner) is still alive."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from datetime import datetime

import psutil

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
    if _die_with_parent():
        return

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != int(expected):
                os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _die_with_parent() -> bool:
    """Linux: ask the kernel for SIGKILL when the parent exits (prctl PR_SET_PDEATHSIG), so no
    watcher thread runs beside a measurement; False where that is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):
        return False
    return os.getppid() == int(os.environ[PARENT_PID_ENV])  # not orphaned in between


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int | None, since: str | None = None) -> bool:
    """Is the process `pid` (started at ISO time `since`, when given) still there? A reused pid
    whose process started later does not count; nor does a zombie."""
    if not pid:
        return False
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if since:
            return proc.create_time() <= datetime.fromisoformat(since).timestamp() + 2
        return True
    except (psutil.Error, ValueError):
        return False
