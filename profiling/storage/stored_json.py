"""The JSON the store keeps in text columns, and the one way to read it.

Every `*_json` column (and cases.variant_params) holds a JSON object. A guide run's spec
(kind "scenario") keeps its tables under "results" as lists of row objects, a claims run's
(kind "claims") its table under "claims" as a list of row objects. `shape_problem` says what
a value lacks: `bundle_check` refuses such a value at import. `decode` is what readers use: a
bad value written some other way (an older import, a hand-edited database) is skipped, as an
empty object, and said in one line, so one bad row cannot break the pages and reports of the
other runs. The line goes to stderr (`warning: …`, once per process), or where
`warnings_to` sends it (the dashboard: `st.warning`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

OBJECT_COLUMNS = ("spec_json", "environment_json", "noise_json", "machine_json",
                  "variant_params")
ROW_LISTS = {"scenario": "results", "claims": "claims"}  # spec kind -> key of its tables

_sink: contextvars.ContextVar[tuple[Callable[[str], None], set[str]] | None] = \
    contextvars.ContextVar("stored_json_sink", default=None)
_printed: set[str] = set()
NOT_JSON = "is not JSON text"


def is_json_column(column: str) -> bool:
    """Whether the store keeps JSON text in this column."""
    return column.endswith("_json") or column in OBJECT_COLUMNS


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            dict: "an object"}.get(type(value), "a number")


def _rows_problem(where: str, value: Any) -> str | None:
    if not isinstance(value, list):
        return f"has {where} that is {_kind(value)}, not a list of rows"
    for row in value:
        if not isinstance(row, dict):
            return f"has {where} holding {_kind(row)}, not only row objects"
    return None


def value_problem(column: str, value: Any) -> str | None:
    """Why a decoded value is not what readers of `column` expect ('is a list, not a JSON
    object', 'has "claims" holding a number, not only row objects'), or None."""
    if not isinstance(value, dict):
        return f"is {_kind(value)}, not a JSON object"
    key = ROW_LISTS.get(value.get("kind")) if column == "spec_json" else None
    if key is None or key not in value:
        return None
    if key == "claims":
        return _rows_problem('"claims"', value[key])
    if not isinstance(value[key], dict):
        return f'has "results" that is {_kind(value[key])}, not an object of tables'
    for name, rows in value[key].items():
        if why := _rows_problem(f'results "{str(name)[:40]}"', rows):
            return why
    return None


def shape_problem(column: str, text: str) -> str | None:
    """Why `text` cannot be stored in `column` ('is not JSON text', 'is a list, not a JSON
    object', ...), or None when it can."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return NOT_JSON
    return value_problem(column, value)


def decode(text: Any, column: str, run_id: str) -> dict[str, Any]:
    """The object stored in `column` of run `run_id`; {} when there is none, and {} with one
    warning line ("run …: spec_json is a list, not a JSON object; skipped") when the value is
    unreadable or of another shape."""
    if text is None or (isinstance(text, float) and text != text) or text == "":
        return {}
    why = shape_problem(column, text) if isinstance(text, str) else "is not text"
    if why is None:
        return json.loads(text)
    report(f"run {run_id}: {column} {why}; skipped")
    return {}


def _to_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def report(message: str) -> None:
    """Say one line about stored data that was skipped, once per place it goes to."""
    show, seen = _sink.get() or (_to_stderr, _printed)
    if message not in seen:
        seen.add(message)
        show(message)


@contextlib.contextmanager
def warnings_to(show: Callable[[str], None]) -> Iterator[None]:
    """Within the block (and this thread or task), skipped stored data is shown by `show`,
    each line once."""
    token = _sink.set((show, set()))
    try:
        yield
    finally:
        _sink.reset(token)


def run_kind(spec_json: Mapping[str, Any] | str | None, run_id: str = "") -> str:
    """A run's kind from its spec (profile, scenario, claims, distributed, capture, model):
    its "kind", else profile (a bad spec is said in one line and counts as a profile)."""
    spec = spec_json if isinstance(spec_json, Mapping) else decode(spec_json, "spec_json",
                                                                   run_id)
    kind = spec.get("kind")
    return kind if isinstance(kind, str) and kind else "profile"
