"""The native nesting pass (csrc/trace_nesting.cc) against the NumPy one it stands in for:
depth, parent and self time equal to the bit on nested, overlapping, tied and zero-length
events, and the pieces of their own time; and build_events' sort of presorted rows against
lexsort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profiling.traces.breakdown import exclusive_pieces, exclusive_pieces_numpy
from profiling.traces.model import _lane_order, nesting, nesting_numpy
from profiling.traces.native import library, library_path


def _events(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lane = rng.integers(0, 4, n).astype(np.int32)
    ts = rng.integers(0, n // 3 + 1, n).astype(float) + rng.choice([0.0, 0.5, 0.1], n)
    dur = rng.choice([0.0, 0.0, 1.0, 2.5, 7.0, 40.0, 0.3], n) * rng.integers(0, 3, n)
    order = np.lexsort((-dur, ts, lane))
    return lane[order], ts[order], dur[order]


@pytest.mark.parametrize("seed", range(8))
def test_native_nesting_equals_numpy(seed):
    assert library() is not None, f"no native library at {library_path()}: run `make build`"
    for n in (1, 2, 7, 100, 5000):
        lane, ts, dur = _events(seed * 100 + n, n)
        for got, want in zip(nesting(lane, ts, dur), nesting_numpy(lane, ts, dur), strict=True):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype


def test_a_gap_in_the_levels_stops_the_parents_as_numpy_does():
    # overlapping, not nested: the third event is two deep with nobody one deep before it
    lane = np.zeros(4, dtype=np.int32)
    ts, dur = np.array([0.0, 1.0, 2.0, 20.0]), np.array([10.0, 10.0, 1.0, 1.0])
    for got, want in zip(nesting(lane, ts, dur), nesting_numpy(lane, ts, dur), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("presorted", [True, False])
def test_lane_order_is_lexsorts(presorted):
    rng = np.random.default_rng(3)
    n = 20_000
    lane = rng.integers(0, 40_000 if not presorted else 5, n).astype(np.int32)
    ts = rng.integers(0, 500, n).astype(float)
    dur = rng.integers(0, 4, n).astype(float)
    if presorted:
        by_time = np.lexsort((-dur, ts))
        ts, dur, lane = ts[by_time], dur[by_time], lane[by_time]
    np.testing.assert_array_equal(_lane_order(lane, ts, dur), np.lexsort((-dur, ts, lane)))


@pytest.mark.parametrize("seed", range(4))
def test_native_exclusive_pieces_equal_numpy(seed):
    for n in (1, 3, 50, 4000):
        lane, ts, dur = _events(seed * 10 + n, n)
        depth, parent, self_us = nesting_numpy(lane, ts, dur)
        events = pd.DataFrame({"ts_us": ts, "dur_us": dur, "parent": parent})
        for got, want in zip(exclusive_pieces(events), exclusive_pieces_numpy(events),
                             strict=True):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype
