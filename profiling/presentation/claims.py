"""The guide's claims table for people: what the CLI, the Variants page and the HTML report
show of a `profiling.experiments.claims` table."""

from __future__ import annotations

import pandas as pd

from profiling.experiments.claims import COLUMNS, SETTINGS
from profiling.presentation.units import MISSING, format_speedup

SHOWN_COLUMNS = ["claim", "verdict", "speedup", "measured", "source"]


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """SHOWN_COLUMNS: the verdict names its setting ("holds (eager)") where the claim was
    measured in one, and a timing claim's speedup reads "4.03× [3.15, 5.93]" (MISSING for the
    claims that are no timing). A table stored before these columns existed shows what it has."""
    out = table.reindex(columns=COLUMNS).copy()
    out["verdict"] = [f"{v} ({SETTINGS.get(s, s)})" if isinstance(s, str) and s else v
                      for v, s in zip(out["verdict"], out["setting"], strict=True)]
    out["speedup"] = [format_speedup(r.speedup, r.speedup_ci95_low, r.speedup_ci95_high)
                      if pd.notna(r.speedup) else MISSING for r in out.itertuples()]
    return out[SHOWN_COLUMNS]
