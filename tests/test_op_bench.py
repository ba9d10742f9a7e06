"""profiling.bench.op runs end to end on a tiny size and reports every column (no timing asserts)."""

from __future__ import annotations

import json

import pytest

from profiling.bench import op as bench
from profiling.spec import parse_shapes, parse_sizes


def test_parse_sizes_accepts_scientific_notation():
    assert parse_sizes("1e3, 25000,1e6") == [1000, 25000, 1_000_000]
    for bad in ("0", "-5", "1.5", "abc", "64x1024"):
        with pytest.raises(ValueError, match="invalid sizes"):
            parse_sizes(bad)


def test_parse_shapes_takes_counts_and_dims_and_names_the_bad_item():
    assert parse_shapes("1e6, 1000x1000,, 7") == [(1_000_000,), (1000, 1000), (7,)]
    assert parse_shapes(["1000", (2, 3)]) == [(1000,), (2, 3)]
    with pytest.raises(ValueError, match="invalid sizes: 'lots'"):
        parse_shapes("10, lots")
    with pytest.raises(ValueError, match="invalid shapes: '12x-3'"):
        parse_shapes("12x-3")
    with pytest.raises(ValueError, match="invalid shapes"):
        parse_shapes(" , ")


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
        assert row["raw_custom_median_s"] > 0
        assert row["speedup_ci95_low"] <= row["speedup_vs_nn_relu"] <= row["speedup_ci95_high"]


def test_table_names_the_columns():
    row = bench.Row(
        dtype="float32", size=1000, custom_median_s=1e-5, custom_iqr_s=1e-6,
        raw_custom_median_s=0.9e-5, nn_relu_median_s=2e-5, nn_relu_iqr_s=1e-6,
        probe_median_s=1e-5, speedup_vs_nn_relu=2.0, speedup_ci95_low=1.5,
        speedup_ci95_high=2.5, custom_gbps=0.8, nn_relu_gbps=0.4, probe_gbps=0.8,
        utilization=1.0, custom_elements_per_s=1e8, custom_minflt_per_call=0.0,
        nn_relu_minflt_per_call=0.0, samples=5, number=100)
    table = bench.format_table([row])
    assert "speedup" in table and "2.00x [1.50, 2.50]" in table and "probe GB/s" in table


def test_bad_flags_exit_with_a_one_line_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--dtypes", "int8"])
    assert "not one of float16, bfloat16, float32, float64" in capsys.readouterr().err


def test_timeit_check_takes_turns_and_pairs_every_round():
    # The README's "tool against a plain timeit" table: both live processes answer every round,
    # and each difference is the paired median of tool / timeit (no timing asserts).
    from profiling.bench.timeit_check import agreement

    rows = agreement([1000], rounds=2, sessions=1)
    assert [(r["variant"], r["numel"]) for r in rows] == [("custom_op", 1000), ("nn_relu", 1000)]
    for r in rows:
        assert len(r["tool_rounds"]) == len(r["timeit_rounds"]) == 2
        assert all(0 < v < 1e-2 for v in r["tool_rounds"] + r["timeit_rounds"])
        ratios = sorted(t / p for t, p in zip(r["tool_rounds"], r["timeit_rounds"], strict=True))
        assert r["diff"] == pytest.approx(sum(ratios) / 2 - 1)
