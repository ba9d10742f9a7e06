"""Turning the Run page's choices into a RunSpec (no Streamlit here)."""

from __future__ import annotations

from typing import Any

from profiling.spec import RunSpec, SpecError, parse_shapes

SHAPE_PRESETS = ("1000", "100000", "1000x1000", "1e7", "10000x10000")


def chosen_shapes(presets: list[str], custom: str) -> list[tuple[int, ...]]:
    """Preset and custom shapes, duplicates dropped, in the order given."""
    items = [*presets, *custom.split(",")]
    if not any(item.strip() for item in items):
        raise SpecError("shapes", "", "at least one preset or a custom size such as 1e6 or 1000x1000")
    return list(dict.fromkeys(parse_shapes(items)))


def variant_entry(variant_id: str, params: dict[str, Any], defaults: dict[str, Any]) -> Any:
    """The spec's form of a variant: the bare id, or {"id", "params"} with non-default params."""
    changed = {k: v for k, v in params.items() if defaults.get(k) != v}
    return {"id": variant_id, "params": changed} if changed else variant_id


def build_spec(choices: dict[str, Any]) -> RunSpec:
    """RunSpec from the page's choices (keys named like RunSpec's fields, shapes already parsed)."""
    return RunSpec(
        variants=list(choices["variants"]),
        shapes=list(choices["shapes"]),
        dtypes=list(choices["dtypes"]),
        devices=list(choices["devices"]) or None,
        threads=[int(t) for t in choices["threads"]] or None,
        modes=list(choices["modes"]),
        passes=list(choices["passes"]),
        repeats=int(choices["repeats"]),
        min_time=float(choices["min_time"]),
        trace=bool(choices["trace"]),
        fusion=bool(choices["fusion"]),
        label=str(choices.get("label", "")),
    )
