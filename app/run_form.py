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


# The form's widget keys and their defaults; devices and threads default to what this machine
# has (``form_defaults``). Parameters live under ``param_<variant>_<name>``.
DEFAULT_VARIANTS = ("nn_relu", "where", "maximum")
LIST_FIELDS = ("variants", "shape_presets", "dtypes", "devices", "threads", "modes", "passes")
# widget key -> query parameter name (short, readable links)
QUERY_NAMES = {"variants": "variants", "shape_presets": "shapes", "shape_custom": "custom",
               "dtypes": "dtypes", "devices": "devices", "threads": "threads", "modes": "modes",
               "passes": "passes", "repeats": "repeats", "min_time": "min_time",
               "trace": "trace", "fusion": "fusion", "label": "label"}
PARAM_PREFIX = "param_"


def form_defaults(variant_ids: list[str], devices: list[str], cpus: int) -> dict[str, Any]:
    """The form a first visit shows."""
    return {
        "variants": [v for v in DEFAULT_VARIANTS if v in variant_ids],
        "shape_presets": ["1000", "100000"], "shape_custom": "",
        "dtypes": ["float32"], "devices": devices[:1], "threads": [cpus],
        "modes": ["eager", "function"], "passes": ["forward"],
        "repeats": 7, "min_time": 0.05, "trace": True, "fusion": False, "label": "",
    }


def param_key(variant_id: str, name: str) -> str:
    return f"{PARAM_PREFIX}{variant_id}_{name}"


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def form_from_query(query: dict[str, str], defaults: dict[str, Any],
                    options: dict[str, list]) -> dict[str, Any]:
    """The form encoded in a link (``form_to_query``'s output); anything missing, unknown or
    malformed falls back to its default, so a stale or edited link never breaks the page.
    ``options`` lists the accepted values of each list field."""
    form = dict(defaults)
    for key, name in QUERY_NAMES.items():
        if name not in query:
            continue
        raw = str(query[name])
        try:
            if key in LIST_FIELDS:
                wanted = [part for part in raw.split(",") if part and part != "-"]
                if key == "threads":
                    wanted = [int(part) for part in wanted]
                form[key] = [value for value in wanted if value in options.get(key, wanted)]
            elif key in ("trace", "fusion"):
                form[key] = raw.lower() in ("1", "true", "yes", "on")
            elif key == "repeats":
                form[key] = int(raw)
            elif key == "min_time":
                form[key] = float(raw)
            else:
                form[key] = raw
        except ValueError:
            continue
    for name, raw in query.items():
        variant, dot, param = str(name).partition(".")
        if dot and variant in options.get("variants", ()):
            try:
                form[param_key(variant, param)] = _number(str(raw))
            except ValueError:
                continue
    return form


def form_to_query(form: dict[str, Any], defaults: dict[str, Any],
                  param_defaults: dict[tuple[str, str], Any]) -> dict[str, str | None]:
    """Query parameters for ``form``: only what differs from the defaults (None removes one);
    a changed variant parameter becomes ``<variant>.<name>=value`` while the variant is chosen;
    ``param_defaults`` maps (variant, parameter) to its default."""
    query: dict[str, str | None] = {}
    for key, name in QUERY_NAMES.items():
        value = form.get(key)
        if value == defaults.get(key):
            query[name] = None
        elif key in LIST_FIELDS:
            query[name] = ",".join(map(str, value)) or "-"  # "-": chosen nothing, not default
        elif key in ("trace", "fusion"):
            query[name] = "1" if value else "0"
        else:
            query[name] = str(value)
    chosen = set(form.get("variants") or ())
    for (variant, param), default in param_defaults.items():
        value = form.get(param_key(variant, param))
        changed = variant in chosen and value is not None and value != default
        query[f"{variant}.{param}"] = f"{value:g}" if changed else None
    return query


def form_from_spec(spec: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The form that reproduces a stored run's spec (``RunSpec.to_json()``): presets where a
    shape is one, the rest as custom text; parameters under their widget keys."""
    run = RunSpec.from_json(spec)
    form = dict(defaults)
    variants = run.normalized_variants()
    form["variants"] = list(dict.fromkeys(v["id"] for v in variants))
    for variant in variants:
        for name, value in variant["params"].items():
            form[param_key(variant["id"], name)] = value
    presets = {shape: text for text in SHAPE_PRESETS for shape in parse_shapes(text)}
    shapes = [tuple(s) for s in run.shapes]
    form["shape_presets"] = [presets[s] for s in shapes if s in presets]
    form["shape_custom"] = ", ".join("x".join(map(str, s)) for s in shapes if s not in presets)
    form.update(dtypes=list(run.dtypes), modes=list(run.modes), passes=list(run.passes),
                repeats=int(run.repeats), min_time=float(run.min_time), trace=bool(run.trace),
                fusion=bool(run.fusion), label=str(run.label or ""))
    if run.devices:
        form["devices"] = list(run.devices)
    if run.threads:
        form["threads"] = [int(t) for t in run.threads]
    return form
