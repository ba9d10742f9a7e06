"""relu_impls.bench runs end to end on a tiny size and reports every column (no timing asserts)."""

from __future__ import annotations

import json

import pytest

from relu_impls import bench


def test_parse_sizes_accepts_scientific_notation():
    assert bench.parse_sizes("1e3, 25000,1e6") == [1000, 25000, 1_000_000]
    for bad in ("0", "-5", "1.5", "abc"):
        with pytest.raises(ValueError):
            bench.parse_sizes(bad)


def test_timing_statistics_come_from_all_samples():
    timing = bench.Timing(samples=(1.0, 2.0, 3.0, 4.0, 100.0), number=1, minflt_per_call=0.0)
    assert timing.median_s == 3.0
    assert 0 < timing.iqr_s < 100.0


def test_json_run_reports_every_op_and_the_allocator(capsys, monkeypatch):
    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "true")
    code = bench.main(
        ["--sizes", "1e3", "--dtypes", "float32,bfloat16", "--repeats", "3", "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["environment"]["allocator"].startswith("BFC")
    rows = {(r["dtype"], r["size"]): r for r in report["rows"]}
    assert set(rows) == {("float32", 1000), ("bfloat16", bench.HALF_SIZE)}
    for row in rows.values():
        assert row["custom_median_s"] > 0 and row["nn_relu_median_s"] > 0
        assert row["probe_gbps"] > 0 and row["utilization"] > 0
        assert row["custom_minflt_per_call"] >= 0 and row["samples"] == 3


def test_table_names_the_columns():
    row = bench.Row(
        "float32",
        1000,
        1e-5,
        1e-6,
        2e-5,
        1e-6,
        1e-5,
        2.0,
        0.8,
        0.4,
        0.8,
        1.0,
        1e8,
        0.0,
        0.0,
        5,
        100,
    )
    table = bench.format_table([row])
    assert "speedup" in table and "2.00x" in table and "probe GB/s" in table


def test_bad_flags_exit_with_a_one_line_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--dtypes", "int8"])
    assert "not one of float16, bfloat16, float32, float64" in capsys.readouterr().err
