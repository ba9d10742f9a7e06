"""A run's stored noise verdict, read back, and the short line the front ends show for it.

The verdict itself is measured by profiling.measurement.noise; this reads the stored copy
through the one tolerant JSON reader (profiling.storage.stored_json).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from profiling.measurement.noise import OTHER_CPU_LIMIT, SPREAD_LIMIT, STEAL_LIMIT
from profiling.storage.stored_json import decode

# Runs stored before the verdict counted its wide cases say it only in this reason.
_WIDE_REASON = re.compile(r"^(\d+) case\(s\) with spread")
SURVIVES = ("Differences whose CI excludes 1 survive this noise; those it may explain are the "
            "ones already marked not significant (open markers, neutral colour).")


@dataclass(frozen=True)
class NoiseNote:
    """One noisy run: ``line`` is the short sentence shown, ``reasons`` the details behind it."""

    run: str
    line: str
    reasons: list[str]


def stored(noise_json: str | None, run_id: str) -> dict:
    """Run `run_id`'s stored verdict ({"verdict", "reasons", ...}); verdict unknown when absent
    or unreadable (storage.stored_json says so)."""
    noise = decode(noise_json, "noise_json", run_id)
    if noise.get("verdict") not in ("quiet", "noisy", "unknown"):
        return {"verdict": "unknown", "reasons": []}
    return noise


def _fraction(group: Mapping, name: str) -> float:
    try:
        return float(group.get(name) or 0.0)
    except (TypeError, ValueError):
        return 0.0


def wide_cases(noise: Mapping) -> int:
    """How many cases had a spread (IQR/median) over SPREAD_LIMIT (0 when not recorded)."""
    if isinstance(noise.get("wide_cases"), int):
        return noise["wide_cases"]
    for reason in noise.get("reasons") or []:
        match = _WIDE_REASON.match(str(reason))
        if match:
            return int(match.group(1))
    return 0


def headline(noise: Mapping) -> str | None:
    """One short line for a noisy verdict, None otherwise: 'noisy: other processes used up to
    33% of the CPUs; 24 cases spread > 10%' (the worst group's share, the count of wide cases);
    the verdict's first reason when it holds neither."""
    if noise.get("verdict") != "noisy":
        return None
    groups = [g for g in noise.get("groups") or [] if isinstance(g, Mapping)]
    parts = []
    other = max((_fraction(g, "other_cpu_frac") for g in groups), default=0.0)
    if other > OTHER_CPU_LIMIT:
        parts.append(f"other processes used up to {other:.0%} of the CPUs")
    steal = max((_fraction(g, "steal_frac") for g in groups), default=0.0)
    if steal > STEAL_LIMIT:
        parts.append(f"the hypervisor stole up to {steal:.0%} of CPU time")
    wide = wide_cases(noise)
    if wide:
        parts.append(f"{wide} case{'' if wide == 1 else 's'} spread > {SPREAD_LIMIT:.0%}")
    if not parts:
        parts = [str(r) for r in (noise.get("reasons") or ["no reason recorded"])[:1]]
    return "noisy: " + "; ".join(parts)


def notes(runs: pd.DataFrame, names: Mapping[str, str] | None = None) -> list[NoiseNote]:
    """One NoiseNote per noisy run of a store.list_runs() frame (or run rows with run_id and
    noise_json), named by ``names`` where given."""
    out = []
    for row in runs.to_dict("records"):
        noise = stored(row.get("noise_json"), row["run_id"])
        line = headline(noise)
        if line is not None:
            out.append(NoiseNote((names or {}).get(row["run_id"], row["run_id"]), line,
                                 [str(r) for r in noise.get("reasons") or []]))
    return out

