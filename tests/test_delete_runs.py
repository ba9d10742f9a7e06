"""Deleting runs: Store.delete_runs, `python -m profiling delete` and the Compare page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import connect, make_run, open_page, store_state, texts

from profiling.storage.store import RunInUseError, Store, UnknownRunError

REPO = Path(__file__).resolve().parents[1]


def rows_mentioning(store: Store, run_id: str) -> dict[str, int]:
    """Rows of any table whose run_id or case_id belongs to the run (by id prefix)."""
    import sqlalchemy as sa

    out = {}
    with connect(store) as conn:
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            cols = [c["name"] for c in inspector.get_columns(table)]
            keys = [c for c in ("run_id", "case_id") if c in cols]
            if keys:
                where = " OR ".join(f"{k} LIKE :prefix" for k in keys)
                n = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE {where}"),
                                 {"prefix": f"{run_id}%"}).scalar()
                if n:
                    out[table] = n
    return out


@pytest.fixture
def store(backend) -> Store:
    """A store on SQLite and on PostgreSQL (tests/pg.py), also the CLI's and the pages'."""
    return Store(backend)


def test_delete_removes_every_row_and_only_unshared_traces(store):
    shared = make_run(store, "a", b"shared-trace")
    keeper = make_run(store, "b", b"shared-trace")
    alone = make_run(store, "c", b"only-mine")
    assert {"cases", "samples", "op_stats", "breakdown", "fusion", "calibration",
            "runs"} <= set(rows_mentioning(store, shared))
    keeper_rows = rows_mentioning(store, keeper)
    shared_file = store.trace_path(f"{shared}-0000")
    alone_file = store.trace_path(f"{alone}-0000")
    assert store.delete_runs([shared]) == []  # its trace is also the keeper's
    assert rows_mentioning(store, shared) == {}
    assert shared_file.exists() and rows_mentioning(store, keeper) == keeper_rows
    assert store.delete_runs([alone]) == [alone_file]
    assert not alone_file.exists()
    assert store.count("traces") == 1
    assert list(store.list_runs().run_id) == [keeper]


def test_a_running_or_unknown_run_is_refused_and_nothing_is_deleted(store):
    done = make_run(store, "done", b"t1")
    running = make_run(store, "live", b"t2", status="running")  # this process: alive
    before = store_state(store)
    with pytest.raises(RunInUseError, match="still running"):
        store.delete_runs([done, running])
    with pytest.raises(UnknownRunError):
        store.delete_runs([done, "no-such-run"])
    assert store_state(store) == before


def cli(*args: str, data: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "RELU_LAB_DATA": str(data), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "profiling", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, **kwargs)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def test_cli_delete(store, tmp_path):
    data = store.data_dir
    first, second = make_run(store, "first", b"x1"), make_run(store, "second", b"x2")
    live = make_run(store, "live", b"x3", status="running")
    assert "--yes" in one_line_error(cli("delete", first, data=data, stdin=subprocess.DEVNULL))
    assert "still running" in one_line_error(cli("delete", live, "--yes", data=data))
    assert "unknown run id" in one_line_error(cli("delete", "nope", "--yes", data=data))
    assert len(store.list_runs()) == 3
    out = cli("delete", first, "--yes", data=data)
    assert out.returncode == 0 and f"deleted {first}" in out.stdout, out.stderr
    assert set(store.list_runs().run_id) == {second, live}
    # on a terminal it asks; "n" keeps the run, "y" deletes it
    for answer, code in (("n", 1), ("y", 0)):
        leader, follower = os.openpty()
        try:
            os.write(leader, f"{answer}\n".encode())
            out = cli("delete", second, data=data, stdin=follower)
        finally:
            os.close(leader)
            os.close(follower)
        assert out.returncode == code, out.stderr
        assert "[y/N]" in out.stdout and "second" in out.stderr
        assert (second in set(store.list_runs().run_id)) == (answer == "n")


def open_section(at) -> None:
    """Open the Compare page's "Delete runs" expander, as a click does (the page reruns)."""
    at.session_state["delete_open"] = True
    at.run()


def test_compare_page_deletes_a_run_after_confirmation(store):
    gone, kept = make_run(store, "to delete", b"d1"), make_run(store, "to keep", b"d2")
    gone_trace = store.trace_path(f"{gone}-0000")
    at = open_page("compare")
    # closed, the section sends nothing (the browser would load its widgets' scripts first)
    assert not [m for m in at.multiselect if m.key == "delete_runs"]
    open_section(at)
    at.multiselect(key="delete_runs").set_value([gone]).run()
    assert at.button(key="delete_button").disabled  # not before the confirmation
    at.checkbox(key="delete_confirm").check().run()
    at.button(key="delete_button").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert list(store.list_runs().run_id) == [kept]
    assert not gone_trace.exists()
    assert any(t.startswith(f"Deleted {gone}") for t in texts(at.success))
    assert gone not in at.multiselect(key="compare_runs").options
    assert at.multiselect(key="delete_runs").value == []


def test_compare_page_refuses_to_delete_a_running_run(store):
    live = make_run(store, "live", b"r1", status="running")
    at = open_page("compare")
    open_section(at)
    at.multiselect(key="delete_runs").set_value([live]).run()
    at.checkbox(key="delete_confirm").check().run()
    at.button(key="delete_button").click().run()
    assert not at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and "still running" in errors[0] and "\n" not in errors[0]
    assert list(store.list_runs().run_id) == [live]
