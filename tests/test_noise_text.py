"""The noise verdict said once: one short line per noisy run, from verdicts the measurement
core really builds, and the same line on the report."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
from helpers import fill, open_page, synthetic_cases, texts

from profiling.measurement import noise
from profiling.presentation import noise_text
from profiling.presentation.report import render_html
from profiling.storage.store import Store


def group(name: str, other: float, steal: float = 0.0) -> dict:
    """A `noise.between` dict as the runner stores it, for a group where others used ``other``."""
    reasons = []
    if other > noise.OTHER_CPU_LIMIT:
        reasons.append(f"other processes used {other:.0%} of the CPUs")
    if steal > noise.STEAL_LIMIT:
        reasons.append(f"the hypervisor stole {steal:.0%} of CPU time")
    return {"group": name, "wall_s": 1.0, "load1": 1.0, "other_cpu_frac": other,
            "steal_frac": steal, "noisy": bool(reasons), "reasons": reasons}


def test_headline_names_the_worst_share_and_counts_the_wide_cases():
    spreads = [(f"case {i}", 0.25) for i in range(24)] + [("steady", 0.02)]
    verdict = noise.verdict([group("eager", 0.12), group("function", 0.33), group("x", 0.01)],
                            spreads)
    line = noise_text.headline(verdict)
    assert line == ("noisy: other processes used up to 33% of the CPUs; 24 cases spread > 10%")
    assert len(line.split()) < 20  # a line, not the ~80-word paragraph every reason makes
    assert len(verdict["reasons"]) == 3


def test_headline_of_steal_only_one_wide_case_a_quiet_run_and_an_old_verdict():
    stolen = noise.verdict([group("g", 0.0, steal=0.2)], [("a", 0.5)])
    assert noise_text.headline(stolen) == ("noisy: the hypervisor stole up to 20% of CPU time; "
                                           "1 case spread > 10%")
    assert noise_text.headline(noise.verdict([group("g", 0.01)], [("a", 0.01)])) is None
    # Stored before the verdict counted its wide cases: the count is read from its reason.
    old = {"verdict": "noisy", "groups": [],
           "reasons": ["7 case(s) with spread (IQR/median) over 10%, widest 40% (x)"]}
    assert noise_text.headline(old) == "noisy: 7 cases spread > 10%"
    odd = {"verdict": "noisy", "reasons": ["load average 3.1 on 2 CPUs", "more"],
           "groups": [{"other_cpu_frac": "junk"}, "not a group"]}
    assert noise_text.headline(odd) == "noisy: load average 3.1 on 2 CPUs"


def test_notes_are_one_per_noisy_run_with_every_reason_behind_it():
    loud = noise.verdict([group("eager", 0.4)], [("a", 0.3), ("b", 0.2)])
    runs = pd.DataFrame([
        {"run_id": "r1", "noise_json": json.dumps(loud)},
        {"run_id": "r2", "noise_json": json.dumps(noise.verdict([group("g", 0.0)], []))},
        {"run_id": "r3", "noise_json": "not json"},
    ])
    notes = noise_text.notes(runs, {"r1": "A"})
    assert [(n.run, n.line) for n in notes] == [
        ("A", "noisy: other processes used up to 40% of the CPUs; 2 cases spread > 10%")]
    assert notes[0].reasons == loud["reasons"]


def test_report_says_each_noisy_run_in_one_line_with_details_folded(tmp_path):
    with Store(tmp_path) as store:
        run_id = fill(store, synthetic_cases())
        verdict = noise.verdict([group("eager", 0.33)], [(f"c{i}", 0.3) for i in range(5)])
        with sqlite3.connect(store.db_path) as db:
            db.execute("UPDATE runs SET noise_verdict='noisy', noise_json=? WHERE run_id=?",
                       (json.dumps(verdict), run_id))
        document = render_html(store, [run_id])
    assert document.count('class="warning"') == 1
    assert "noisy: other processes used up to 33% of the CPUs; 5 cases spread &gt; 10%" in document
    details = document[document.index("<details>"):document.index("</details>")]
    assert "eager: other processes used 33% of the CPUs" in details
    assert "not significant" in details


def test_compare_page_says_each_noisy_run_once_with_details_in_one_expander(data_dir):
    with Store(data_dir) as store:
        quiet_id, loud_id = fill(store, synthetic_cases()), fill(store, synthetic_cases())
        for run_id, verdict in ((quiet_id, noise.verdict([group("g", 0.0)], [])),
                                (loud_id, noise.verdict([group("g", 0.5)], [("a", 0.2)]))):
            with sqlite3.connect(store.db_path) as db:
                db.execute("UPDATE runs SET noise_verdict=?, noise_json=? WHERE run_id=?",
                           (verdict["verdict"], json.dumps(verdict), run_id))
    at = open_page("compare", {"runs": f"{quiet_id},{loud_id}"})
    warnings = [w for w in texts(at.warning) if "noisy" in w]
    assert len(warnings) == 1 and warnings[0].endswith(
        "noisy: other processes used up to 50% of the CPUs; 1 case spread > 10%"), warnings
    expander = next(e for e in at.expander if e.label == "Noise details")
    assert "g: other processes used 50% of the CPUs" in " ".join(texts(expander.markdown))


def test_the_cli_says_a_noisy_run_in_the_pages_one_line(data_dir, capsys):
    from profiling.cli.main import main

    with Store(data_dir) as store:
        quiet_id, loud_id = fill(store, synthetic_cases()), fill(store, synthetic_cases())
        verdict = noise.verdict([group("g", 0.45)], [(f"c{i}", 0.3) for i in range(3)])
        with sqlite3.connect(store.db_path) as db:
            db.execute("UPDATE runs SET noise_verdict='noisy', noise_json=? WHERE run_id=?",
                       (json.dumps(verdict), loud_id))
    assert main(["compare", quiet_id, loud_id]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning")]
    assert err == [f"warning: run {loud_id} noisy: other processes used up to 45% of the CPUs; "
                   f"3 cases spread > 10% (details: show {loud_id})"]
