"""Numbers for people: one place that turns seconds, GB/s and fractions into short text.

Times get an automatic unit (ns, µs, ms, s) and 3 significant digits; GB/s one decimal;
percentages 3 significant digits; confidence intervals read "± x"; speedups "1.48× [1.41, 1.55]".
``readable`` applies the same rules to a whole table (a pandas Styler: the numbers stay
numbers, so columns still sort), with one time unit for the whole table so a page's tables and
charts agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

TIME_UNITS = (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0))
NO_VALUE_UNIT = ("µs", 1e-6)  # the unit of a time that is 0, missing or not finite
MISSING = "–"


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_number(value: object, digits: int = 3) -> str:
    """``digits`` significant digits, never exponent notation: 0.00123, 12.3, 31,600."""
    number = _finite(value)
    if number is None:
        return MISSING
    if number == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(number)))
    rounded = round(number, digits - 1 - magnitude)
    if rounded and math.floor(math.log10(abs(rounded))) > magnitude:  # 9.996 -> 10.0
        magnitude += 1
    return f"{rounded:,.{max(digits - 1 - magnitude, 0)}f}"


def format_scientific(value: object, digits: int = 2) -> str:
    """A small or large number as 3e-6 / 1.2e+4 (for output differences); 0 stays 0."""
    number = _finite(value)
    if number is None:
        return MISSING
    if number == 0:
        return "0"
    mantissa, _, exponent = f"{number:.{digits - 1}e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def time_unit(seconds: float | Iterable[float]) -> tuple[str, float]:
    """(name, seconds per unit) that reads best for ``seconds``: for several values, the unit of
    their median, so one table or chart uses one unit. No finite value: µs."""
    values = np.atleast_1d(np.asarray(list(seconds) if not np.isscalar(seconds) else [seconds],
                                      dtype=float))
    values = np.abs(values[np.isfinite(values) & (values != 0)])
    if values.size == 0:
        return NO_VALUE_UNIT
    return _unit_of(float(np.median(values)))


def _unit_of(typical: float) -> tuple[str, float]:
    """The unit of one positive duration (NumPy's median per table cell cost 40 µs)."""
    chosen = TIME_UNITS[0]
    for name, scale in TIME_UNITS:
        if typical >= scale * 0.9995:  # 999.96 µs reads 1.00 ms, not 1,000 µs
            chosen = (name, scale)
    return chosen


def format_time(seconds: object, unit: str | None = None, digits: int = 3) -> str:
    """'27.5 µs', '2.57 ms'; ``unit`` forces one of ns, µs, ms, s."""
    number = _finite(seconds)
    if number is None:
        return MISSING
    name, scale = _unit(unit) if unit else _unit_of(abs(number)) if number else NO_VALUE_UNIT
    return f"{format_number(number / scale, digits)} {name}"


def format_ci(half_width_s: object, unit: str | None = None, digits: int = 2) -> str:
    """A 95% CI half-width as '± 0.46 µs' (``unit`` as in ``format_time``)."""
    number = _finite(half_width_s)
    if number is None:
        return MISSING
    return "± " + format_time(abs(number), unit, digits)


def format_gbps(gbps: object) -> str:
    """'31.8 GB/s' (one decimal)."""
    number = _finite(gbps)
    return MISSING if number is None else f"{number:,.1f} GB/s"


def format_bytes(count: object, digits: int = 3) -> str:
    """Binary units: 1536 -> '1.50 KiB', 2**20 -> '1.00 MiB' (``digits`` significant digits)."""
    number = _finite(count)
    if number is None:
        return MISSING
    for name, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(number) >= scale:
            return f"{format_number(number / scale, digits)} {name}"
    return f"{format_number(number, digits)} B"


def format_time_range(low_s: object, high_s: object, digits: int = 3) -> str:
    """A 95% CI as '[27.1, 28.0] µs': both bounds in the unit that reads best for the pair."""
    low, high = _finite(low_s), _finite(high_s)
    if low is None or high is None:
        return MISSING
    name, scale = time_unit([low, high])
    return f"[{format_number(low / scale, digits)}, {format_number(high / scale, digits)}] {name}"


def format_percent(fraction: object, digits: int = 3) -> str:
    """0.642 -> '64.2%' (``digits`` significant digits)."""
    number = _finite(fraction)
    return MISSING if number is None else f"{format_number(number * 100, digits)}%"


def format_speedup(speedup: object, low: object = None, high: object = None,
                   digits: int = 3) -> str:
    """'1.48× [1.41, 1.55]': a speedup (t_baseline / t_variant, > 1 is faster) with its 95% CI
    when both bounds are known; '1.48×' without; MISSING without a speedup."""
    if _finite(speedup) is None:
        return MISSING
    text = f"{format_number(speedup, digits)}×"
    if _finite(low) is None or _finite(high) is None:
        return text
    return f"{text} [{format_number(low, digits)}, {format_number(high, digits)}]"


def _unit(name: str) -> tuple[str, float]:
    for unit in TIME_UNITS:
        if unit[0] == name or (name == "us" and unit[0] == "µs"):
            return unit
    raise ValueError(f"unknown time unit {name!r} (accepted: ns, µs, ms, s)")


# Column name endings that say what a number is; times are converted to the table's unit.
_TIME_SUFFIXES = {"_s": 1.0, "_ms": 1e-3, "_us": 1e-6, "_ns": 1e-9}


def readable(frame: pd.DataFrame, unit: str | None = None, digits: int = 3):
    """``frame`` for display: time columns (``*_s``, ``*_ms``, ``*_us``, ``*_ns``) in one unit
    (``unit``, else the one that reads best for all of them) renamed e.g. ``median (µs)``,
    ``gbps`` with one decimal, ``utilization`` as a percentage, every other float with
    ``digits`` significant digits. Returns a pandas Styler for ``st.dataframe``."""
    frame = frame.copy()
    times = {c: next(f for s, f in _TIME_SUFFIXES.items() if c.endswith(s)) for c in frame.columns
             if isinstance(c, str) and any(c.endswith(s) for s in _TIME_SUFFIXES)
             and pd.api.types.is_numeric_dtype(frame[c])}
    if times:
        all_seconds = pd.concat([frame[c].astype(float) * f for c, f in times.items()])
        name, scale = _unit(unit) if unit else time_unit(all_seconds)
        renames = {}
        for column, factor in times.items():
            frame[column] = frame[column].astype(float) * factor / scale
            stem = column[: column.rfind("_")]
            renames[column] = f"{stem} ({name})"
        frame = frame.rename(columns=renames)
    formats = {}
    for column in frame.columns:
        if not pd.api.types.is_float_dtype(frame[column]):
            continue
        if column == "gbps" or str(column).endswith("gbps"):
            formats[column] = lambda v: format_gbps(v).removesuffix(" GB/s")
        elif column == "utilization":
            formats[column] = format_percent
        else:
            formats[column] = lambda v, d=digits: format_number(v, d)
    return frame.style.format(formats, na_rep=MISSING)


def displayed_cells(styler) -> list[list[str]]:
    """The text each cell of a Styler shows (what ``st.dataframe`` draws)."""
    translated = styler._translate(False, False)  # noqa: SLF001 - pandas' own rendering step
    return [[cell.get("display_value", "") for cell in row if cell.get("type") == "td"]
            for row in translated["body"]]


def significant_digits(text: str) -> int:
    """How many significant digits a displayed number shows ('0.00123' -> 3, '31,600' -> 3,
    '31570.6116' -> 9); text that is not a number -> 0."""
    token = text.replace("±", "").strip().split(" ")[0].lstrip("-+").replace(",", "").rstrip("%×x")
    try:
        float(token)
    except ValueError:
        return 0
    digits = token.replace(".", "").lstrip("0")
    if "." not in token:
        digits = digits.rstrip("0") or ("0" if token.strip("0") == "" else digits)
    return len(digits)
