"""Long work (a profile, a scenario) in a background thread, polled by the page that started it.

The thread never touches st.session_state (it has no script context); it updates this object,
which the page keeps in session_state and reads on every poll (``app.job_panel``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.guard import one_line


class JobCancelled(Exception):
    """Raised inside the work (by ``Job.step``) once Cancel was pressed."""


@dataclass
class Job:
    """One background job: its progress, its outcome (result or error) and its cancel switch.
    ``spec`` is what it runs (a RunSpec's JSON for a profile), so a page can tell whether the
    results shown still match its form."""

    total: int
    spec: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    current: str = "starting"
    status: str = "running"
    result: Any = None
    error: str | None = None
    cancelled: bool = False
    finished: bool = False
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    shown: bool = False  # whether the page has re-rendered after the job finished
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_progress(self, progress: Any) -> None:
        """profiling.execution.runner's callback: Progress(done, total, current, status)."""
        with self._lock:
            self.done = int(getattr(progress, "done", self.done))
            self.total = int(getattr(progress, "total", self.total) or self.total)
            self.current = str(getattr(progress, "current", self.current))
            self.status = str(getattr(progress, "status", self.status))

    def step(self, done: int, total: int, what: str) -> None:
        """An ``on_progress(done, total, what)`` callback (scenarios) that also stops the work
        at this step once Cancel was pressed."""
        with self._lock:
            self.done, self.total, self.current = int(done), int(total) or self.total, str(what)
        if self.cancel.is_set():
            raise JobCancelled

    @property
    def run_id(self) -> str | None:
        """The stored run the job produced (a profile returns its id, a scenario a result
        with ``run_id``)."""
        if isinstance(self.result, str):
            return self.result
        return getattr(self.result, "run_id", None)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at


RunJob = Job  # the name the Run page and its tests know


def start_background(work: Callable[[Job], Any], total: int, spec: Any = None,
                     name: str = "relu-lab-job") -> Job:
    """Run ``work(job)`` in a daemon thread; its return value becomes ``job.result``, an
    exception ``job.error`` (one line), ``JobCancelled`` ``job.cancelled``."""
    job = Job(total=total, spec=spec)

    def target() -> None:
        try:
            job.result = work(job)
        except JobCancelled:
            job.cancelled = True
        except Exception as error:  # noqa: BLE001 - reported on the page as one line
            job.error = one_line(error)
        finally:
            job.finished_at = time.monotonic()
            job.finished = True

    threading.Thread(target=target, name=name, daemon=True).start()
    return job


def start_job(spec: Any, store: Any, total: int) -> Job:
    """Start ``profiling.execution.runner.run_profile(spec, store, on_progress, cancel)`` in the background."""

    def work(job: Job) -> str:
        from profiling.execution.runner import run_profile

        return run_profile(spec, store=store, on_progress=job.on_progress, cancel=job.cancel)

    return start_background(work, total, spec=spec.to_json(), name="relu-lab-run")
