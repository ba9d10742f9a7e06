"""Turning the Run page's choices into a RunSpec (no Streamlit here)."""

from __future__ import annotations

from typing import Any

from profiling.spec import RunSpec, SpecError, parse_shapes, parse_sizes

SHAPE_PRESETS = ("1000", "100000", "1000x1000", "1e7", "10000x10000")


def parse_shape_text(text: str) -> list[tuple[int, ...]]:
    """'1e6, 1000x1000' -> [(1000000,), (1000, 1000)]; SpecError naming the bad item."""
    shapes: list[tuple[int, ...]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        shapes.extend(parse_shapes(item) if "x" in item.lower() else parse_sizes(item))
    return shapes


def chosen_shapes(presets: list[str], custom: str) -> list[tuple[int, ...]]:
    """Preset and custom shapes, duplicates dropped, in the order given."""
    shapes = parse_shape_text(",".join(presets)) + parse_shape_text(custom)
    if not shapes:
        raise SpecError("shapes", "", "at least one preset or a custom size such as 1e6 or 1000x1000")
    return list(dict.fromkeys(shapes))


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
