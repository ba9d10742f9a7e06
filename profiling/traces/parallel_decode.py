"""Decoding a big Chrome trace's event blocks on every core.

msgspec holds the GIL while it decodes (two threads decode no faster than one), so blocks go to
worker processes. A worker decodes one block of duration events into compact columns (local
signature codes, ts, dur) and the reader maps its signatures to the trace's codes, in block
order. A block the worker cannot take whole (metadata or B/E events, a cut inside a string,
a validation error, unhashable args) comes back as None and the reader decodes it itself, so
every result and error message is the serial reader's.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
import numpy as np

from profiling.traces.chrome_events import _DUR, _EVENTS, _SIGNATURE, _TS

# A block in flight per worker and one queued: bounded memory, workers never idle.
IN_FLIGHT_PER_WORKER = 2


@dataclass
class Block:
    """One block of X events as columns: ``keys`` the distinct (pid, tid, name, cat, args)
    signatures in first-seen order, ``sig`` each event's index into them, ts and dur (µs)."""

    keys: list[tuple]
    sig: np.ndarray
    ts: np.ndarray
    dur: np.ndarray


def decode_block(piece: bytes) -> Block | None:
    """`piece` (events separated by commas, no brackets) as a Block, or None when only the
    serial reader can take it."""
    try:
        events = _EVENTS.decode(b"[" + piece + b"]")
    except msgspec.MsgspecError:
        return None
    if [e.ph for e in events].count("X") != len(events):
        return None
    n = len(events)
    try:
        ts = np.fromiter(map(_TS, events), float, n)
        dur = np.fromiter(map(_DUR, events), float, n)
        local = {k: i for i, k in enumerate(dict.fromkeys(map(_SIGNATURE, events)))}
        sig = np.fromiter(map(local.__getitem__, map(_SIGNATURE, events)), np.int32, n)
    except (TypeError, ValueError):  # a string or null time, unhashable args
        return None
    return Block(list(local), sig, ts, dur)


def worker_count() -> int:
    """Processes worth starting: the CPUs this process may run on; 1 (decode in-process) in a
    process with threads, which fork cannot copy safely: Python's (the Streamlit server) or
    TensorFlow's runtime (a model run reading its own trace)."""
    if threading.active_count() > 1 or "tensorflow" in sys.modules:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


class BlockPool:
    """Worker processes decoding blocks in order: `submit` a piece, `results` yields
    (piece, Block | None) in submission order, at most IN_FLIGHT_PER_WORKER per worker
    outstanding (submit blocks on the oldest when full)."""

    def __init__(self, workers: int) -> None:
        self.pool = multiprocessing.get_context("fork").Pool(workers)
        self.limit = workers * IN_FLIGHT_PER_WORKER
        self.pending: deque = deque()

    def submit(self, piece: bytes) -> Iterator[tuple[bytes, Block | None]]:
        """Queue `piece`; yields the results that had to be collected to make room."""
        while len(self.pending) >= self.limit:
            yield self._oldest()
        self.pending.append((piece, self.pool.apply_async(decode_block, (piece,))))

    def drain(self) -> Iterator[tuple[bytes, Block | None]]:
        """Every outstanding result, in order."""
        while self.pending:
            yield self._oldest()

    def _oldest(self) -> tuple[bytes, Block | None]:
        piece, result = self.pending.popleft()
        return piece, result.get()

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()
