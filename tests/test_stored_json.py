"""One stored run whose JSON columns have the wrong shape (written straight into the store, as a
hostile import could) must not break the other runs: export, claims, show, history and the
dashboard pages skip it and say so in one line. On SQLite and PostgreSQL (tests/pg.py)."""

from __future__ import annotations

import pytest
from helpers import make_run, open_page, sql, texts

from profiling.cli.main import main
from profiling.storage.store import Store

CLAIM = {"claim_id": "maximum_vs_where", "claim": "tf.maximum is faster than tf.where",
         "measured": "1.4x", "value": 1.4, "ci95_low": 1.3, "ci95_high": 1.5,
         "verdict": "holds", "source": "paired rounds"}
# valid JSON, none of it an object as every reader expects
BAD = {"spec_json": "[1]", "environment_json": "[1]", "noise_json": '"busy"',
       "machine_json": "[2]"}


@pytest.fixture
def store(backend) -> Store:
    return Store(backend)


@pytest.fixture
def runs(store) -> dict[str, str]:
    """A profile run, a claims run and, newest of all (so every scan meets it first), the bad
    one."""
    good = make_run(store, "good", b"good-trace")
    claims = store.create_run({"kind": "claims", "claims": [CLAIM]}, "claims", 0, {})
    store.finish_run(claims, "complete")
    bad = make_run(store, "hostile", b"bad-trace")
    sets = ", ".join(f"{c} = :{c}" for c in BAD)
    # kind 'claims' too (a hostile import can claim any kind): the claims readers meet it
    sql(store, f"UPDATE runs SET {sets}, noise_verdict = 'noisy', kind = 'claims', "
               "created_at = '2999-01-01T00:00:00+00:00' WHERE run_id = :run_id",
        {**BAD, "run_id": bad})
    return {"good": good, "claims": claims, "bad": bad}


def warned(capsys, code: int, bad: str) -> str:
    """stdout of a command that succeeded, skipping the bad run with one warning line per bad
    column it read (and nothing else on stderr)."""
    out = capsys.readouterr()
    err = [ln for ln in out.err.splitlines() if ln.strip() and not ln.startswith("wrote ")]
    assert code == 0, out.err
    assert err and all(ln.startswith(f"warning: run {bad}: ") and "skipped" in ln
                       for ln in err), err
    return out.out


def test_export_html_of_another_run_skips_the_bad_row(store, runs, capsys, tmp_path):
    html = tmp_path / "report.html"
    out = warned(capsys, main(["export", runs["good"], "--format", "html", "-o", str(html)]),
                 runs["bad"])
    assert out == ""
    text = html.read_text()
    assert runs["good"] in text and CLAIM["claim"] in text


def test_claims_stored_skips_the_bad_row(store, runs, capsys):
    out = warned(capsys, main(["claims", "--stored"]), runs["bad"])
    assert CLAIM["claim"] in out and "[holds]" in out


def test_show_and_history_of_the_bad_run_still_work(store, runs, capsys):
    out = warned(capsys, main(["show", runs["bad"]]), runs["bad"])
    assert runs["bad"] in out and "label=hostile" in out
    sql(store, "UPDATE cases SET threads = 2 WHERE idx = 1")  # one case per run matches
    sql(store, "UPDATE cases SET ci95_low_s = median_s * 0.9, ci95_high_s = median_s * 1.1")
    code = main(["history", "variant=nn_relu,threads=1"])
    out = warned(capsys, code, runs["bad"])
    assert runs["good"] in out and runs["bad"] in out


def test_variants_page_shows_the_claims_and_warns_of_the_bad_row(store, runs):
    at = open_page("variants")
    assert not at.exception and not at.error, texts(at.error)
    tables = [t.value for t in at.dataframe if "claim" in t.value.columns]
    assert len(tables) == 1 and list(tables[0]["claim"]) == [CLAIM["claim"]], texts(at.warning)
    warnings = [w for w in texts(at.warning) if runs["bad"] in w]
    assert warnings and all("\n" not in w and "skipped" in w for w in warnings), warnings
