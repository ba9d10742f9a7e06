"""A profile running in a background thread, polled by the Run page.

The thread never touches st.session_state (it has no script context); it updates this object,
which the page keeps in session_state and reads on every poll.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app.guard import one_line


@dataclass
class RunJob:
    """One background run: its progress, its outcome (run_id or error) and its cancel switch."""

    total: int
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    current: str = "starting"
    status: str = "running"
    run_id: str | None = None
    error: str | None = None
    finished: bool = False
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    shown: bool = False  # whether the page has re-rendered after the run finished
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_progress(self, progress: Any) -> None:
        """profiling.runner's callback: Progress(done, total, current, status)."""
        with self._lock:
            self.done = int(getattr(progress, "done", self.done))
            self.total = int(getattr(progress, "total", self.total) or self.total)
            self.current = str(getattr(progress, "current", self.current))
            self.status = str(getattr(progress, "status", self.status))

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at


def start_job(spec: Any, store: Any, total: int) -> RunJob:
    """Start ``profiling.runner.run_profile(spec, store, on_progress, cancel)`` in a daemon thread."""
    job = RunJob(total=total)

    def work() -> None:
        from profiling.runner import run_profile

        try:
            job.run_id = run_profile(spec, store=store, on_progress=job.on_progress,
                                     cancel=job.cancel)
        except Exception as error:  # noqa: BLE001 - reported on the page as one line
            job.error = one_line(error)
        finally:
            job.finished_at = time.monotonic()
            job.finished = True

    threading.Thread(target=work, name="relu-lab-run", daemon=True).start()
    return job
