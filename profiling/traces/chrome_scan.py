"""Chrome trace JSON read by the C++ event scanner (csrc/trace_scan.cc), with no Python object
per event: the `traceEvents` array goes to the scanner chunk by chunk, and its columns (ph, ts,
dur, interned pid/tid/name/cat/long_name codes) come back as NumPy arrays.

The scanner reads exactly what the msgspec reader (profiling.traces.chrome) reads, or refuses:
`scan_chrome` then returns None and the caller reads the trace with that reader, whose results
and error messages are the reference. Without the library (no `make build`) it returns None too.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Iterable

import numpy as np

from profiling.traces.model import Coded, EventColumns, Trace, TraceError, build_events, check_times
from profiling.traces.native import library

_X, _B, _E = 0, 1, 2
_PID, _TID, _NAME, _CAT, _LONG_NAME, _META_NAME = range(6)
_PH, _TS, _DUR, _CODES, _META = 0, 1, 2, 3, 8

# Bytes fed at once from which the scanner splits them between two threads (ctypes lets go of
# the GIL for the call); smaller feeds are not worth a thread.
SPLIT_FROM = 1 << 20


class Refused(Exception):
    """The scanner does not read this input exactly (the msgspec reader must); str() says why."""


class _Scan:
    """One scanner instance: feed it the array's bytes, then take its columns."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.handle = lib.rl_scan_new()
        if not self.handle:
            raise MemoryError("trace scanner")

    def feed(self, data: bytes | memoryview, start: int = 0) -> int:
        """Scan data[start:] (bytes, or a writable buffer: not copied); how many of those
        bytes were consumed."""
        if type(data) is bytes:
            view = None
            address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        else:
            view = (ctypes.c_char * len(data)).from_buffer(data)
            address = ctypes.addressof(view)
        used = self.lib.rl_scan_feed(self.handle, address + start, len(data) - start, 0,
                                     SPLIT_FROM)
        del view  # (lets go of the buffer)
        if self.status() < 0:
            raise Refused(self.lib.rl_scan_why(self.handle).decode())
        return used

    def status(self) -> int:
        return self.lib.rl_scan_status(self.handle)

    def column(self, k: int, dtype: type) -> np.ndarray:
        """Column k, its memory handed over by the scanner (not copied): freed when the last
        array on it goes."""
        size = ctypes.c_int64()
        address = self.lib.rl_scan_take(self.handle, k, ctypes.byref(size))
        if not address:
            return np.array([], dtype=dtype)
        buffer = (ctypes.c_char * (size.value * np.dtype(dtype).itemsize)).from_address(address)
        # not at exit: arrays on it may outlive the finalizers there
        weakref.finalize(buffer, self.lib.rl_free, address).atexit = False
        return np.frombuffer(buffer, dtype=dtype)

    def strings(self, field: int) -> list[str]:
        """The texts of a field's codes, code i at index i."""
        data, offsets = ctypes.c_void_p(), ctypes.c_void_p()
        n = self.lib.rl_scan_strings(self.handle, field, ctypes.byref(data), ctypes.byref(offsets))
        if n <= 0:
            return []
        ends = np.ctypeslib.as_array(ctypes.cast(offsets, ctypes.POINTER(ctypes.c_int64)),
                                     (n + 1,)).tolist()
        blob = ctypes.string_at(data, ends[-1]) if ends[-1] else b""
        return [blob[a:b].decode() for a, b in zip(ends, ends[1:], strict=False)]

    def close(self) -> None:
        if self.handle:
            self.lib.rl_scan_free(self.handle)
            self.handle = None


def scan_chrome(chunks: Iterable[bytes], source: str = "chrome", tf_rules: bool | None = None
                ) -> Trace | None:
    """The Trace of Chrome trace JSON given as byte chunks (events' args not kept), or None when
    the scanner is not built or refuses the input (then read it with the msgspec reader)."""
    lib = library()
    if lib is None:
        return None
    it = iter(chunks)
    scan = _Scan(lib)
    try:
        return _read(scan, it, source, tf_rules)
    except (Refused, TraceError):  # the msgspec reader decides, and words the error
        return None
    finally:
        scan.close()
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _read(scan: _Scan, it: Iterable[bytes], source: str, tf_rules: bool | None) -> Trace | None:
    from profiling.traces import chrome

    head = bytearray()
    carry = b""  # the start of an event cut by the end of the last chunk
    trailer: list[bytes] = []
    for chunk in it:
        if head is not None:
            head += chunk
            start = chrome._events_start(head)
            if start is None:
                continue
            chunk, head = bytes(head[start:]), None
        if trailer or scan.status() == 1:
            trailer.append(bytes(chunk))
            continue
        if type(chunk) is not bytes and (type(chunk) is not memoryview or chunk.readonly):
            chunk = bytes(chunk)
        pos = 0
        if carry:
            # the cut event first: carry plus a growing head of the chunk, not a copy of it all
            k = 1 << 16
            while True:
                joined = carry + bytes(chunk[:k])
                used = scan.feed(joined)
                if used > len(carry) or scan.status() != 0 or k >= len(chunk):
                    break
                k *= 8
            if used <= len(carry):
                rest = joined[used:] + bytes(chunk[k:])
                if scan.status() == 1:
                    trailer.append(rest)
                else:
                    carry = rest
                    if len(carry) > 4 * chrome.CHUNK:
                        raise Refused("an event over 4 chunks")
                continue
            pos, carry = used - len(carry), b""
        pos += scan.feed(chunk, pos)
        if scan.status() == 1:
            trailer.append(bytes(chunk[pos:]))
        else:
            carry = bytes(chunk[pos:])
            if len(carry) > 4 * chrome.CHUNK:
                raise Refused("an event over 4 chunks")
    if head is not None or scan.status() != 1:
        raise Refused("no traceEvents list, or it is never closed")
    metadata = chrome._trailer(b"".join(trailer))
    return _trace(scan, source, metadata, tf_rules)


def _trace(scan: _Scan, source: str, metadata: dict, tf_rules: bool | None) -> Trace | None:
    from profiling.traces.chrome import _release_freed_memory, smallest_codes

    ph = scan.column(_PH, np.uint8)
    ts, dur = scan.column(_TS, np.float64), scan.column(_DUR, np.float64)
    ids = [scan.column(_CODES + f, np.int32) for f in (_PID, _TID, _NAME, _CAT, _LONG_NAME)]
    texts = [scan.strings(f) for f in range(6)]
    rows = None  # the events' rows in the scanner's columns, when not all of them in order
    if (ph != _X).any():
        rows, ts, dur = _pair_begin_end(ph, ts, dur, ids[_PID], ids[_TID])
    del ph
    keep = ~np.isnan(ts) & ~np.isnan(dur) & (dur >= 0)
    if not keep.all():
        rows = np.flatnonzero(keep) if rows is None else rows[keep]
        ts, dur = ts[keep], dur[keep]
    del keep
    try:
        check_times(ts, dur)
    except TraceError:
        return None  # the msgspec reader names the event
    coded = []
    for f, col in enumerate(ids):
        col = col[rows] if rows is not None else col
        used = np.bincount(col, minlength=len(texts[f])) > 0
        categories = [texts[f][j] for j in np.flatnonzero(used)]
        new_code = np.cumsum(used, dtype=np.int32) - 1
        coded.append(Coded(smallest_codes(new_code[col], len(categories)), categories))
        ids[f] = None
    del rows, ids
    process_names, thread_names = _names(scan.column(_META, np.int32), texts)
    cols = EventColumns(*coded, ts_us=ts, dur_us=dur)
    del coded, ts, dur
    _release_freed_memory()
    if tf_rules is None:  # as ChromeReader.trace: TF op events carry long_name
        tf_rules = any(":" in s for s in cols.long_name.categories)
    return Trace(build_events(cols, process_names, thread_names, tf_rules=tf_rules), source,
                 metadata)


def _pair_begin_end(ph: np.ndarray, ts: np.ndarray, dur: np.ndarray, pid: np.ndarray,
                    tid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X rows, and B/E pairs as X rows at their E's place (B's fields, dur = E.ts - B.ts, at
    least 0), as ChromeReader._durations makes them: (rows, ts, dur)."""
    be = np.flatnonzero(ph != _X)
    open_b: dict[tuple[int, int], list[int]] = {}
    starts, ends = [], []
    for i, p, lane in zip(be.tolist(), ph[be].tolist(),
                          zip(pid[be].tolist(), tid[be].tolist(), strict=True), strict=True):
        if p == _B:
            open_b.setdefault(lane, []).append(i)
        else:
            stack = open_b.get(lane)
            if stack:
                starts.append(stack.pop())
                ends.append(i)
    xs = np.flatnonzero(ph == _X)
    b = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    span = ts[e] - ts[b]
    place = np.concatenate([xs, e])
    order = np.argsort(place, kind="stable")
    rows = np.concatenate([xs, b])[order]
    # max(0.0, span) as Python computes it: 0 unless span > 0 (NaN included)
    pair_dur = np.where(span > 0, span, 0.0)
    return rows, ts[rows], np.concatenate([dur[xs], pair_dur])[order]


def _names(meta: np.ndarray, texts: list[list[str]]
           ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """process_name / thread_name metadata (later events win, as in the file's order)."""
    process_names: dict[str, str] = {}
    thread_names: dict[tuple[str, str], str] = {}
    pids, tids, names = texts[_PID], texts[_TID], texts[_META_NAME]
    for is_thread, p, t, n in meta.reshape(-1, 4).tolist():
        if is_thread:
            thread_names[(pids[p], tids[t])] = names[n]
        else:
            process_names[pids[p]] = names[n]
    return process_names, thread_names
