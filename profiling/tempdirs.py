"""Temporary directories that carry their owner's pid, so that none outlives its process.

`make_temp_dir(kind)` creates `<tmp>/relu_lab_<kind>_<pid>-XXXXXXXX`; whoever made it removes it
once its files are in the store. A process killed before it could do so leaves its dir behind:
`remove_dead_temp_dirs()` (called by `Store.recover`, which the commands that write run first)
removes the dirs whose owner is gone.
`private_tmpdir(owner)` is a dir for a child's TMPDIR, removed when `owner` is garbage-collected
or the interpreter exits (TensorFlow writes `__autograph_generated_file*.py` there and only
removes them at a clean exit).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "relu_lab_"
# mkdtemp's random part uses [a-z0-9_] only, so the "-" after the pid cannot occur in the names
# of dirs made without a pid (older code, other programs).
OWNED = re.compile(r"^relu_lab_[a-z]+_(?P<pid>\d+)-[a-z0-9_]+$")


def make_temp_dir(kind: str) -> str:
    """A new dir `<tmp>/relu_lab_<kind>_<pid>-XXXXXXXX` (kind: lowercase letters)."""
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"temp dir kind {kind!r}; accepted: lowercase letters")
    return tempfile.mkdtemp(prefix=f"{PREFIX}{kind}_{os.getpid()}-")


@contextlib.contextmanager
def temp_dir_unless(path: str | os.PathLike | None, kind: str) -> Iterator[str]:
    """`path` itself when given (the caller's, kept), else a new temp dir removed on exit."""
    if path:
        yield str(path)
        return
    made = make_temp_dir(kind)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def private_tmpdir(owner: object, kind: str = "worker") -> str:
    """A new temp dir that is removed when `owner` is garbage-collected or at exit."""
    path = make_temp_dir(kind)
    weakref.finalize(owner, shutil.rmtree, path, True)
    return path


def remove_dead_temp_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove `relu_lab_<kind>_<pid>-*` dirs under `root` (default: the temp dir) whose owning
    process no longer runs; returns the removed paths. A pid reused by a process that started
    after the dir last changed does not keep it."""
    from profiling.process import pid_alive

    base = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        m = OWNED.match(entry.name)
        if not m or int(m.group("pid")) == os.getpid():
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not entry.is_dir(follow_symlinks=False) or (uid is not None and st.st_uid != uid):
                continue
        except OSError:
            continue
        changed = datetime.fromtimestamp(st.st_mtime, UTC).isoformat()
        if not pid_alive(int(m.group("pid")), changed):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
