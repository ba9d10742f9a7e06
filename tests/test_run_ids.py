"""Run ids and prefixes on the command line, on SQLite and on PostgreSQL (tests/pg.py): an empty
or blank id is an error for every command that takes one, an ambiguous prefix is refused with
the list of its matches, and `delete` says what it deletes (and with --yes still refuses an
ambiguous prefix unless --all-matching)."""

from __future__ import annotations

import os

import pytest
from helpers import make_run

from profiling.cli.main import main
from profiling.storage.store import Store


@pytest.fixture
def store(backend) -> Store:
    return Store(backend)


def one_line_error(capsys, code: int) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (code, err)
    return err[0]


def common_prefix(run_ids: list[str]) -> str:
    return os.path.commonprefix(run_ids)


@pytest.mark.parametrize("n_runs", [1, 3])
@pytest.mark.parametrize("blank", ["", " ", "\t "])
def test_delete_of_a_blank_id_deletes_nothing(store, capsys, n_runs, blank):
    runs = {make_run(store, f"r{i}", f"trace-{i}".encode()) for i in range(n_runs)}
    line = one_line_error(capsys, main(["delete", blank, "--yes"]))
    assert "empty run id" in line, line
    assert set(store.list_runs().run_id) == runs
    # beside a good id, too: nothing at all is deleted
    line = one_line_error(capsys, main(["delete", sorted(runs)[0], blank, "--yes"]))
    assert set(store.list_runs().run_id) == runs


@pytest.mark.parametrize("command", [["show", "{}"], ["compare", "{}", "{good}"],
                                     ["compare", "{good}", "{}"], ["compare", "{}", "--against",
                                                                   "label=r0"],
                                     ["export", "{}", "--format", "json", "-o", "{out}"]])
def test_every_command_refuses_a_blank_id(store, capsys, tmp_path, command):
    good = make_run(store, "r0", b"t0")
    for blank in ("", "  "):
        args = [a.format(blank, good=good, out=tmp_path / "x.json") for a in command]
        line = one_line_error(capsys, main(args))
        assert "empty run id" in line, line
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("blank", ["", " "])
def test_history_refuses_a_blank_filter(store, capsys, blank):
    make_run(store, "r0", b"t0")
    assert "filter" in one_line_error(capsys, main(["history", blank]))
    assert "filter" in one_line_error(capsys, main(["history", f"variant=nn_relu,commit={blank}"]))


def test_an_ambiguous_prefix_is_refused_with_its_matches(store, capsys, tmp_path):
    runs = [make_run(store, f"label-{i}", f"t{i}".encode()) for i in range(3)]
    prefix = common_prefix(runs)
    assert prefix and prefix not in runs  # runs made in one second share their timestamp
    for args in (["show", prefix], ["compare", prefix, runs[0]],
                 ["export", prefix, "--format", "json", "-o", str(tmp_path / "x.json")],
                 ["delete", prefix, "--yes"]):
        line = one_line_error(capsys, main(args))
        assert f"run id prefix {prefix!r} matches 3 runs" in line, line
        for i, run_id in enumerate(runs):
            assert run_id in line and f"label-{i}" in line, line
    assert set(store.list_runs().run_id) == set(runs)
    assert not (tmp_path / "x.json").exists()
    # a unique prefix still works
    assert main(["show", runs[1][:-1]]) == 0 and runs[1] in capsys.readouterr().out


def test_delete_says_what_it_deletes_and_deletes_all_matching_only_when_asked(store, capsys):
    runs = [make_run(store, f"label-{i}", f"t{i}".encode()) for i in range(2)]
    assert main(["delete", runs[0], "--yes"]) == 0
    captured = capsys.readouterr()
    assert f"{runs[0]}  complete  2 cases  label-0" in captured.err, captured.err
    assert set(store.list_runs().run_id) == {runs[1]}
    more = make_run(store, "label-2", b"t2")
    prefix = common_prefix([runs[1], more])
    assert main(["delete", prefix, "--yes", "--all-matching"]) == 0
    captured = capsys.readouterr()
    assert "label-1" in captured.err and "label-2" in captured.err, captured.err
    assert store.list_runs().empty
