"""The trace benchmark (`make bench-traces`): its generators' event sizes and one table of
fresh-process runs. Speed is never asserted here: the figures live in the README."""

from __future__ import annotations

from profiling.bench import traces as bench


def test_the_pytorch_like_generator_writes_at_most_150_bytes_an_event(tmp_path):
    events = 20_000
    size = bench.generate(tmp_path / "t.json", events)
    assert 100 <= size / events <= 150
    assert bench.generate_tf(tmp_path / "tf.json", events) / events <= 150


def test_one_table_with_the_baseline_beside_it(capsys):
    assert bench.main(["--events", "4000", "--tf-events", "0", "--repeats", "1",
                       "--tasks", "trace-summary,Traces page"]) == 0
    out = capsys.readouterr().out
    assert "Interpreter baseline" in out and "python + trace-summary imports" in out
    rows = [line.split("|")[1:-1] for line in out.splitlines()
            if line.startswith("| PyTorch")]
    # the .json and its .json.gz (summary only), each task measured, none failed
    assert [(r[0].strip(), r[3].strip()) for r in rows] == [
        ("PyTorch", "trace-summary"), ("PyTorch", "Traces page"),
        ("PyTorch .json.gz", "trace-summary")]
    for r in rows:
        assert r[1].strip() == "4,000" and float(r[4]) > 0 and float(r[7]) > 0, r
