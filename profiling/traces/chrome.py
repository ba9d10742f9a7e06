"""Chrome trace JSON (.json / .json.gz) from TensorBoard, PyTorch or any other tool.

Decoded with msgspec into typed structs, one block of events at a time, straight into columns:
the file is read (and gunzipped) in chunks, so a trace of any size costs its columns, not a
list of dicts. Sizes are capped before and while reading (`max_trace_bytes`). Without args,
the C++ scanner (profiling.traces.chrome_scan) reads what it can read exactly, faster; this
reader is the reference it is tested against, and reads everything it refuses.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from profiling import settings
from profiling.traces.chrome_events import (
    _ANY,
    _ARGS,
    _DUR,
    _EVENTS,
    _RAW_EVENTS,
    _SIGNATURE,
    _TS,
    _Event,
    _KnownArgs,
    _RawEvent,
)
from profiling.traces.model import (
    Coded,
    EventColumns,
    OtherFormat,
    Trace,
    TraceError,
    build_events,
)

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_BYTES = settings.DEFAULT_MAX_TRACE_BYTES
CHUNK = 8 << 20


def max_trace_bytes() -> int:
    """Cap on decompressed size (bytes); env RELU_LAB_MAX_TRACE_BYTES overrides."""
    return settings.max_trace_bytes()


def _over_limit(limit: int) -> TraceError:
    return TraceError(f"decompressed trace exceeds the {limit / 2**30:.2g} GiB limit "
                      "(set RELU_LAB_MAX_TRACE_BYTES to raise it)")


def gunzip_chunks(chunks: Iterable[bytes], limit: int | None = None, chunk: int = CHUNK
                  ) -> Iterator[bytes]:
    """Decompress a gzip stream chunk by chunk; TraceError past `limit` bytes or on a bad
    stream (the gzip-bomb guard: output is bounded before it is produced)."""
    limit = max_trace_bytes() if limit is None else limit
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    try:
        for data in chunks:
            buf = data
            while buf:
                piece = d.decompress(buf, chunk)
                total += len(piece)
                if total > limit:
                    raise _over_limit(limit)
                if piece:
                    yield piece
                buf = d.unconsumed_tail
        while not d.eof and (piece := d.decompress(b"", chunk)):
            total += len(piece)
            if total > limit:
                raise _over_limit(limit)
            yield piece
        if not d.eof:
            raise TraceError("truncated gzip stream")
    except zlib.error as e:
        raise TraceError(f"corrupt gzip data: {e}") from None


def read_ahead(chunks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """`chunks` as they come, produced by a thread up to `depth` ahead: zlib lets go of the
    GIL, so a gzip stream is decompressed while the scanner scans the last chunk. Errors
    reach the reader where they would have; closing this closes `chunks`."""
    import queue
    import threading

    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(end)
        except BaseException as e:  # handed to the reader, which raises it
            put(e)

    worker = threading.Thread(target=produce, name="relu-lab-read-ahead", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def gunzip_capped(data: bytes, limit: int | None = None, chunk: int = 1 << 20) -> bytes:
    """Decompress gzip bytes in bounded chunks; TraceError past `limit` bytes or on a bad
    stream."""
    return b"".join(gunzip_chunks([data], limit, chunk))


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _num(v: Any) -> float:
    if isinstance(v, float):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def smallest_codes(codes: np.ndarray, n: int) -> np.ndarray:
    """`codes` (of n categories) in the smallest integer type that holds them."""
    return codes.astype(np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32)


class _Coder:
    """Values (str, int, float, None) to stable integer codes of their text across blocks."""

    def __init__(self) -> None:
        self.by_value: dict = {}
        self.by_text: dict[str, int] = {}
        self.categories: list[str] = []

    def encode(self, values: list) -> np.ndarray:
        """Codes of one block, in the smallest integer type that holds every code so far
        (np.concatenate widens the blocks to the last one's type)."""
        lookup = self.by_value
        try:  # the common case: every value seen before (a C-level loop)
            return self._small(np.fromiter(map(lookup.__getitem__, values), np.int32,
                                           len(values)))
        except KeyError:
            pass
        for v in set(values).difference(lookup):
            key = _text(v)
            code = self.by_text.get(key)
            if code is None:
                code = self.by_text[key] = len(self.categories)
                self.categories.append(key)
            lookup[v] = code
        return self._small(np.fromiter(map(lookup.__getitem__, values), np.int32, len(values)))

    def _small(self, codes: np.ndarray) -> np.ndarray:
        return smallest_codes(codes, len(self.categories))

    def code(self, v: Any) -> int:
        """The code of one value (a new one gets the next code)."""
        code = self.by_value.get(v)
        if code is None:
            key = _text(v)
            code = self.by_text.get(key)
            if code is None:
                code = self.by_text[key] = len(self.categories)
                self.categories.append(key)
            self.by_value[v] = code
        return code

    def column(self, parts: list[np.ndarray]) -> Coded:
        codes = np.concatenate(parts) if parts else np.array([], dtype=np.int32)
        parts.clear()
        return Coded(codes, self.categories)


_LANE_NAME_CAT = attrgetter("pid", "tid", "name", "cat")


class _Signatures:
    """Each distinct (pid, tid, name, cat, args) of a trace's events, coded once: a block's five
    code columns then cost one dict lookup per event, in C (a trace has a few thousand such
    signatures however many events it has). Gives up (None) on unhashable args or past
    LIMIT signatures, and the reader codes field by field."""

    LIMIT = 1 << 16

    def __init__(self, coders: dict[str, _Coder]) -> None:
        self.coders = coders
        self.index: dict[tuple, int] = {}
        self.rows: list[tuple[int, int, int, int, int]] = []
        self.table = np.zeros((0, 5), dtype=np.int32)

    def codes(self, keys: Callable[[], Iterable[tuple]], n: int) -> np.ndarray | None:
        """(n, 5) codes of pid, tid, name, cat, long_name of a block of n events; keys() gives
        each event's (pid, tid, name, cat, args), args being the decoded args or a
        (long_name,) tuple (called twice when the block brings new signatures)."""
        index = self.index
        try:
            try:
                sig = np.fromiter(map(index.__getitem__, keys()), np.int32, n)
            except KeyError:
                for key in set(keys()).difference(index):
                    self._add(key)
                if len(index) > self.LIMIT:
                    return None
                self.table = np.asarray(self.rows, dtype=np.int32)
                sig = np.fromiter(map(index.__getitem__, keys()), np.int32, n)
        except TypeError:  # unhashable args (a list)
            return None
        return self.table[sig]

    def _add(self, key: tuple) -> None:
        pid, tid, name, cat, args = key
        long_name = args.long_name if type(args) is _KnownArgs else \
            args[0] if type(args) is tuple else None
        c = self.coders
        self.index[key] = len(self.rows)
        self.rows.append((c["pid"].code(pid), c["tid"].code(tid), c["name"].code(name),
                          c["cat"].code(cat), c["long_name"].code(long_name)))


class ChromeReader:
    """Accumulates blocks of decoded events into columns (see `feed`, `columns`)."""

    def __init__(self, keep_args: bool = True) -> None:
        self.keep_args = keep_args
        self.coders = {k: _Coder() for k in ("pid", "tid", "name", "cat", "long_name")}
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                                   ("pid", "tid", "name", "cat", "long_name",
                                                    "ts", "dur", "args")}
        self.process_names: dict[str, str] = {}
        self.thread_names: dict[tuple[str, str], str] = {}
        self.open_b: dict[tuple[str, str], list[_Event]] = {}
        self.signatures: _Signatures | None = _Signatures(self.coders)
        self.count = 0

    def feed(self, events: list) -> None:
        """Add one block of events (duration events X, B/E pairs; M for names)."""
        base, self.count = self.count, self.count + len(events)
        phs = [e.ph for e in events]
        xs = events if phs.count("X") == len(phs) else self._durations(events, phs)
        if not xs:
            return
        ts, dur = self._floats(xs, _TS), self._floats(xs, _DUR)
        keep = ~np.isnan(ts) & ~np.isnan(dur) & (dur >= 0)
        if not keep.all():
            xs = [e for e, k in zip(xs, keep, strict=True) if k]
            ts, dur = ts[keep], dur[keep]
        from profiling.traces.model import check_times

        check_times(ts, dur, base)
        p, c = self.parts, self.coders
        if self.keep_args:
            raws = [e.args for e in xs]
            known = self._known_args(raws)
            p["args"].append(np.asarray(
                [bytes(r).decode("utf-8", "replace") if len(r) else "{}" for r in raws],
                dtype=object))
            keyed = [(*k, (a.long_name if type(a) is _KnownArgs else None,))
                     for k, a in zip(map(_LANE_NAME_CAT, xs), known, strict=True)]

            def keys() -> Iterable[tuple]:
                return keyed
        else:
            known = None

            def keys() -> Iterable[tuple]:
                return map(_SIGNATURE, xs)
        coded = self.signatures.codes(keys, len(xs)) if self.signatures is not None else None
        if coded is not None:
            self._append_coded(coded)
        else:
            self.signatures = None  # too many or unhashable: field by field from now on
            if known is None:
                known = [e.args for e in xs]
            p["pid"].append(c["pid"].encode([e.pid for e in xs]))
            p["tid"].append(c["tid"].encode([e.tid for e in xs]))
            p["name"].append(c["name"].encode([e.name for e in xs]))
            p["cat"].append(c["cat"].encode([e.cat for e in xs]))
            p["long_name"].append(c["long_name"].encode(
                [a.long_name if type(a) is _KnownArgs else None for a in known]))
        p["ts"].append(ts)
        p["dur"].append(dur)

    def _append_coded(self, coded: np.ndarray) -> None:
        """Append a block's (events, 5) signature codes as the five code columns."""
        for j, k in enumerate(("pid", "tid", "name", "cat", "long_name")):
            self.parts[k].append(self.coders[k]._small(coded[:, j]))

    def _durations(self, events: list, phs: list) -> list:
        """The X events, and B/E pairs made into X events; metadata (M) read on the way."""
        xs = []
        for e, ph in zip(events, phs, strict=True):
            if ph == "X":
                xs.append(e)
            elif ph == "M":
                self._meta(e)
            elif ph == "B":
                self.open_b.setdefault((_text(e.pid), _text(e.tid)), []).append(e)
            elif ph == "E":
                stack = self.open_b.get((_text(e.pid), _text(e.tid)))
                if stack:
                    b = stack.pop()
                    ts = _num(b.ts)
                    xs.append(type(b)("X", b.name, b.cat, b.pid, b.tid, ts,
                                      max(0.0, _num(e.ts) - ts), b.args))
        return xs

    @staticmethod
    def _floats(events: list, field: attrgetter) -> np.ndarray:
        try:  # the common case: every value a number
            return np.fromiter(map(field, events), float, len(events))
        except (TypeError, ValueError):
            values = list(map(field, events))
        try:
            return np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            return np.asarray([_num(v) for v in values], dtype=float)

    @staticmethod
    def _known_args(raws: list[msgspec.Raw]) -> list:
        joined = b"[" + b",".join([bytes(r) if len(r) else b"null" for r in raws]) + b"]"
        return _ARGS.decode(joined)

    def _meta(self, e: _Event | _RawEvent) -> None:
        if e.name not in ("process_name", "thread_name"):
            return
        args = e.args
        if isinstance(args, msgspec.Raw):
            try:
                args = msgspec.json.decode(bytes(args), type=_KnownArgs) if len(args) else None
            except msgspec.MsgspecError:
                return
        if not isinstance(args, _KnownArgs):
            return
        if e.name == "process_name":
            self.process_names[_text(e.pid)] = _text(args.name)
        else:
            self.thread_names[(_text(e.pid), _text(e.tid))] = _text(args.name)

    def columns(self) -> EventColumns:
        c, p = self.coders, self.parts

        def floats(k: str) -> np.ndarray:
            out = np.concatenate(p[k]) if p[k] else np.array([], dtype=float)
            p[k].clear()  # the blocks are garbage once joined
            return out

        return EventColumns(
            pid=c["pid"].column(p["pid"]), tid=c["tid"].column(p["tid"]),
            name=c["name"].column(p["name"]), cat=c["cat"].column(p["cat"]),
            long_name=c["long_name"].column(p["long_name"]),
            ts_us=floats("ts"), dur_us=floats("dur"),
            args=(np.concatenate(p.pop("args")) if p["args"] else np.array([], dtype=object))
            if self.keep_args else None)

    def trace(self, source: str, metadata: dict, tf_rules: bool | None = None) -> Trace:
        cols = self.columns()
        _release_freed_memory()
        if tf_rules is None:  # TensorBoard's trace viewer JSON: TF op events carry long_name
            tf_rules = any(":" in s for s in cols.long_name.categories)
        events = build_events(cols, self.process_names, self.thread_names, tf_rules=tf_rules)
        return Trace(events, source, metadata)


def _release_freed_memory() -> None:
    """Hand the heap freed by the decoded blocks back to the OS before the next big step
    (glibc keeps it otherwise, and peak RSS is what a 1 GB trace is judged by)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---- streaming the document --------------------------------------------------------------
_WS = b" \t\r\n"


def _decode_block(piece: bytes, reader: ChromeReader) -> bool:
    """Decode `piece` (events separated by commas) into `reader`; False if it is not a whole
    number of events (cut inside one)."""
    decoder = _RAW_EVENTS if reader.keep_args else _EVENTS
    try:
        events = decoder.decode(b"[" + piece + b"]")
    except msgspec.ValidationError as e:
        raise TraceError(f"not a Chrome trace: {_where(e, reader.count)}") from None
    except msgspec.DecodeError:
        return False
    reader.feed(events)
    return True


def _where(e: msgspec.ValidationError, base: int) -> str:
    import re

    text = str(e).splitlines()[0]
    m = re.search(r"- at `\$\[(\d+)\]\.?([^`]*)`", text)
    if not m:
        return text
    field = f" field {m.group(2)}" if m.group(2) else ""
    return f"event {base + int(m.group(1))}{field}: {text[:m.start()].strip().rstrip(' -')}"


def _decode_head(buf: bytearray, stop: int, reader: ChromeReader) -> bool:
    """Decode the events in buf[1:stop] (buf[0] is the '[' or ',' before them) in place: the
    bytes at 0 and `stop` become '[' and ']' for the decode and are put back after, so a block
    of events is never copied."""
    first, after = buf[0], buf[stop]
    buf[0], buf[stop] = 0x5B, 0x5D  # [ ]
    view = memoryview(buf)
    part = view[:stop + 1]
    try:
        # Raw args would pin the buffer: decode a copy when they are kept
        events = _RAW_EVENTS.decode(bytes(part)) if reader.keep_args else _EVENTS.decode(part)
    except msgspec.ValidationError as e:
        raise TraceError(f"not a Chrome trace: {_where(e, reader.count)}") from None
    except msgspec.DecodeError:
        return False
    finally:
        part.release()
        view.release()
        buf[0], buf[stop] = first, after
    reader.feed(events)
    return True


def _drain(buf: bytearray, reader: ChromeReader) -> None:
    """Decode the complete events at the head of `buf` and remove them from it (buf[0] stays
    the separator before the next event)."""
    end = len(buf)
    for _ in range(64):
        cut = buf.rfind(b"},", 0, end)
        if cut < 0:
            return
        if _decode_head(buf, cut + 1, reader):
            del buf[:cut + 1]
            return
        end = cut


def read_chrome(chunks: Iterable[bytes], keep_args: bool = True, source: str = "chrome",
                tf_rules: bool | None = None, bundle_ok: bool = True) -> Trace:
    """Trace from Chrome trace JSON given as byte chunks (object with traceEvents, or a bare
    array of events); a ReLU Lab bundle is handed to the bundle reader. (`load_trace` tries
    the C++ scanner, profiling.traces.chrome_scan, first.)"""
    reader = ChromeReader(keep_args)
    buf = bytearray()
    head_done = False
    for chunk in chunks:
        buf += chunk
        if not head_done:
            start = _events_start(buf)
            if start is None:
                continue
            del buf[:start - 1]  # keep the '[': buf[0] is the separator before an event
            head_done = True
        if len(buf) > CHUNK:
            _drain(buf, reader)
            if len(buf) > 4 * CHUNK:
                raise TraceError(f"not valid JSON: no complete event in the "
                                 f"{len(buf) >> 20} MiB after event {reader.count}")
    if not head_done:
        return _whole_document(bytes(buf), bundle_ok)
    trailer = _finish(buf, reader)
    del buf  # up to a block of text, not needed while the columns are built
    return reader.trace(source, trailer, tf_rules)


def _events_start(buf: bytearray) -> int | None:
    """Offset just past the '[' that opens the event list; None until it is in `buf`."""
    text = bytes(buf[:64]).lstrip(_WS)
    if text.startswith(b"["):
        return len(buf) - len(bytes(buf).lstrip(_WS)) + 1
    if not text.startswith(b"{") and len(text) > 0:
        raise TraceError("not valid JSON: a trace must start with { or [")
    key = buf.find(b'"traceEvents"')
    if key < 0:
        return None
    i = key + len(b'"traceEvents"')
    while i < len(buf) and buf[i] in _WS + b":":
        i += 1
    if i >= len(buf):
        return None
    if buf[i:i + 1] != b"[":
        raise TraceError("foreign JSON: traceEvents is not a list of events")
    return i + 1


def _finish(buf: bytearray, reader: ChromeReader) -> dict:
    """Decode the last events (up to the list's closing ']') and check the rest; returns the
    document's scalar metadata that follows the list."""
    _drain(buf, reader)
    tail = bytes(buf)
    pos = 1
    for _ in range(64):
        close = tail.find(b"]", pos)
        if close < 0:
            raise TraceError("not valid JSON: the traceEvents list is never closed (truncated?)")
        piece = tail[1:close].strip(_WS)
        if not piece.strip(_WS) or _decode_block(piece, reader):
            break
        pos = close + 1
    else:
        raise TraceError(f"not valid JSON after event {reader.count}")
    return _trailer(tail[close + 1:])


def _trailer(rest: bytes) -> dict:
    """The document's scalar metadata in `rest`, the text after the traceEvents list's ']'
    (TraceError when it does not close the document)."""
    rest = rest.strip(_WS)
    if not rest:
        return {}
    if rest == b"}":
        return {}
    try:
        more = _ANY.decode(b"{" + rest.lstrip(b",")) if rest.startswith(b",") else None
    except msgspec.DecodeError:
        more = None
    if not isinstance(more, dict):
        raise TraceError("not valid JSON after the traceEvents list (truncated?)")
    return {k: v for k, v in more.items() if isinstance(v, (str, int, float))}


def _whole_document(data: bytes, bundle_ok: bool) -> Trace:
    """No traceEvents list: a bundle, a foreign document or invalid JSON."""
    if not data.strip(_WS):
        raise TraceError("trace is empty")
    obj = decode_json(data)  # stdlib json, as the bundle reader expects
    if bundle_ok and isinstance(obj, dict) and isinstance(obj.get("format"), str):
        raise OtherFormat(obj)  # profiling.storage.bundle.load_any_trace opens exported bundles
    raise TraceError("foreign JSON: not a Chrome trace (no traceEvents list) nor a ReLU Lab bundle")


def file_chunks(path: str | os.PathLike, limit: int | None = None, reuse: bool = False
                ) -> Iterator[bytes | memoryview]:
    """A trace file's bytes in chunks: a regular file only, its size checked before reading
    and its reading bounded (profiling.files); FileRefused becomes TraceError. With `reuse`,
    each chunk is a view of one buffer that the next chunk overwrites (for a reader that is
    done with a chunk when it asks for the next: no fresh pages to fault in per chunk)."""
    from profiling.files import FileRefused, open_bounded

    limit = max_trace_bytes() if limit is None else limit
    try:
        f = open_bounded(path, limit, "trace file")
    except FileRefused as e:
        raise TraceError(str(e)) from None
    total = 0
    buffer = bytearray(CHUNK) if reuse else None
    with f:
        while True:
            chunk = f.read(CHUNK) if buffer is None else \
                memoryview(buffer)[:f.readinto(buffer)]
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise TraceError(f"{Path(path).name} grew past the trace size limit while read")
            yield chunk


def decode_json(data: bytes) -> Any:
    """Whole-document JSON decode (stdlib json) with the size cap and gzip guard: bundles and
    other small documents, where json's exact semantics (big ints, 1e400) matter."""
    import json

    if data[:2] == GZIP_MAGIC:
        data = gunzip_capped(data)
    elif len(data) > max_trace_bytes():
        raise TraceError(f"trace exceeds the {max_trace_bytes() / 2**30:.2g} GiB limit")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TraceError(f"not valid JSON ({type(e).__name__} at byte "
                         f"{getattr(e, 'pos', getattr(e, 'start', '?'))})") from None
    except RecursionError:
        raise TraceError("JSON nested too deeply") from None


def from_chrome_json(obj: Any, tf_rules: bool | None = None) -> Trace:
    """Trace from an already decoded Chrome trace (object with traceEvents, or a bare array)."""
    if isinstance(obj, dict) and not isinstance(obj.get("traceEvents"), list):
        raise TraceError("foreign JSON: not a Chrome trace (no traceEvents list) nor a ReLU Lab "
                         "bundle")
    return read_chrome([msgspec.json.encode(obj)], tf_rules=tf_rules, bundle_ok=False)
