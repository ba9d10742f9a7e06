"""The Chrome trace event as msgspec structs, and the decoders and field getters of the msgspec
reader (profiling.traces.chrome): what csrc/trace_scan.cc must read alike."""

from __future__ import annotations

from operator import attrgetter

import msgspec


class _KnownArgs(msgspec.Struct, gc=False, frozen=True):  # frozen: hashable (see _Signatures)
    long_name: str | None = None
    name: str | int | float | None = None  # process_name / thread_name metadata


_ArgsField = _KnownArgs | list | str | float | bool | None


class _Fields(msgspec.Struct, gc=False):
    """The fields every event carries; args are decoded per use below."""

    ph: str | None = None
    name: str | int | float | None = ""
    cat: str | int | float | None = ""
    pid: int | float | str | None = 0
    tid: int | float | str | None = 0
    ts: float | str | None = None
    dur: float | str | None = None


class _Event(_Fields, gc=False):
    """One event with the args the analysis reads (long_name, metadata names)."""

    args: _ArgsField = None


class _RawEvent(_Fields, gc=False):
    """One event with its args kept as raw JSON (for the page's event details)."""

    args: msgspec.Raw = msgspec.Raw()


_ARGS = msgspec.json.Decoder(list[_ArgsField])
_EVENTS = msgspec.json.Decoder(list[_Event])
_RAW_EVENTS = msgspec.json.Decoder(list[_RawEvent])
_ANY = msgspec.json.Decoder()

_SIGNATURE = attrgetter("pid", "tid", "name", "cat", "args")
_TS, _DUR = attrgetter("ts"), attrgetter("dur")
