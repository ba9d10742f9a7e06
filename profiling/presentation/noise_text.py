"""A run's stored noise verdict, read back, and the warning lines the front ends show.

The verdict itself is measured by profiling.measurement.noise; this reads the stored copy
through the one tolerant JSON reader (profiling.storage.stored_json).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from profiling.storage.stored_json import decode


def stored(noise_json: str | None, run_id: str) -> dict:
    """Run `run_id`'s stored verdict ({"verdict", "reasons", ...}); verdict unknown when absent
    or unreadable (storage.stored_json says so)."""
    noise = decode(noise_json, "noise_json", run_id)
    if noise.get("verdict") not in ("quiet", "noisy", "unknown"):
        return {"verdict": "unknown", "reasons": []}
    return noise


def warnings(runs: pd.DataFrame, names: Mapping[str, str] | None = None) -> list[str]:
    """One line per noisy run of a store.list_runs() frame: 'run NAME: machine busy: ...'."""
    out = []
    for row in runs.to_dict("records"):
        noise = stored(row.get("noise_json"), row["run_id"])
        if noise["verdict"] == "noisy":
            name = (names or {}).get(row["run_id"], row["run_id"])
            out.append(f"run {name} was measured on a noisy machine: "
                       + "; ".join(noise.get("reasons") or ["no reason recorded"]))
    return out
