"""profiling.presentation.units: numbers for people (auto time units, 3 significant digits, GB/s, %, ± CI)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from profiling.presentation import units


@pytest.mark.parametrize("value, text", [
    (31570.6116, "31,600"), (29.0572, "29.1"), (0.00123456, "0.00123"), (9.996, "10.0"),
    (999.7, "1,000"), (0, "0"), (-0.5, "-0.500"), (math.nan, "–"), (None, "–"), ("x", "–"),
])
def test_format_number_keeps_three_significant_digits(value, text):
    assert units.format_number(value) == text


@pytest.mark.parametrize("seconds, text", [
    (27.5e-6, "27.5 µs"), (219e-6, "219 µs"), (2.5734e-3, "2.57 ms"), (0.99996e-3, "1.00 ms"),
    (12.0, "12.0 s"), (3e-9, "3.00 ns"), (math.inf, "–"),
])
def test_format_time_picks_the_unit(seconds, text):
    assert units.format_time(seconds) == text


def test_one_unit_for_many_values_and_forced_units():
    assert units.time_unit([8e-6, 30e-6, 2e-3]) == ("µs", 1e-6)
    assert units.time_unit([]) == ("µs", 1e-6)
    assert units.format_time(0.0108, unit="µs") == "10,800 µs"
    assert units.format_time(0.0108, unit="us") == "10,800 µs"
    with pytest.raises(ValueError, match="unknown time unit"):
        units.format_time(1.0, unit="h")


def test_gbps_percent_and_ci():
    assert units.format_gbps(31.77) == "31.8 GB/s"
    assert units.format_percent(0.642) == "64.2%"
    assert units.format_percent(1.094) == "109%"
    assert units.format_ci(0.46e-6, "µs") == "± 0.46 µs"


def test_readable_puts_a_table_in_one_unit_with_short_numbers():
    frame = pd.DataFrame({"label": ["a", "b"], "median_s": [27.5e-6, 2.19e-3],
                          "self_us": [5.0, 7.25], "gbps": [31.57, 2.0],
                          "utilization": [0.64, 1.1], "count": [1, 2], "x": [31570.6116, 29.0572]})
    styler = units.readable(frame)
    assert list(styler.data.columns) == ["label", "median (µs)", "self (µs)", "gbps",
                                         "utilization", "count", "x"]
    assert units.displayed_cells(styler) == [
        ["a", "27.5", "5.00", "31.6", "64.0%", "1", "31,600"],
        ["b", "2,190", "7.25", "2.0", "110%", "2", "29.1"],
    ]
    assert styler.data["median (µs)"].tolist() == pytest.approx([27.5, 2190.0])  # still sortable
    assert units.displayed_cells(units.readable(frame, unit="ms"))[0][1] == "0.0275"


@pytest.mark.parametrize("text, digits", [
    ("0.00123", 3), ("31,600", 3), ("31570.6116", 9), ("± 0.46 µs", 2), ("64.2%", 3),
    ("nn_relu", 0), ("", 0), ("1000x1000", 0),
])
def test_significant_digits_of_displayed_text(text, digits):
    assert units.significant_digits(text) == digits


def test_speedup_bytes_and_time_range():
    assert units.format_speedup(1.4815, 1.409, 1.5549) == "1.48× [1.41, 1.55]"
    assert units.format_speedup(0.3333, None, 0.4) == "0.333×"  # a CI needs both bounds
    assert units.format_speedup(math.nan) == units.MISSING
    assert units.format_bytes(1536) == "1.50 KiB" and units.format_bytes(2**20) == "1.00 MiB"
    assert units.format_bytes(512) == "512 B" and units.format_bytes(None) == units.MISSING
    assert units.format_time_range(27.12e-6, 28.04e-6) == "[27.1, 28.0] µs"
    assert units.format_time_range(0.9e-3, 1.2e-3) == "[0.900, 1.20] ms"
    assert units.format_time_range(None, 1.0) == units.MISSING
