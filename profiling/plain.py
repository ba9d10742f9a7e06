"""NumPy and pandas values made plain Python for JSON: the one conversion (CLI `--json`,
stored specs)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def json_safe(obj: Any) -> Any:
    """obj with NumPy scalars made Python, DataFrames made lists of records, tuples lists and
    every non-finite float None (recursively through dicts and lists)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return json_safe(obj.to_dict("records"))
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj
