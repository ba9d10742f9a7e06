#!/usr/bin/env python3
"""Lay profiling/ out along its data flow (issue 10, part 2). Deterministic; run once, from the
root of a checkout, on a clean tree:

    python3 tools/restructure_profiling.py            # moves with git mv, rewrites references
    python3 tools/restructure_profiling.py --dry-run  # only checks the mapping and prints the moves

It refuses to start (exit 2, nothing changed) when a profiling/**/*.py has no line in MOVES or
STAYS below: add one and run it again. What it does:

1. `git mv` every module in MOVES (subpackages get an __init__.py with a docstring);
2. rewrites every reference in tracked text files: dotted names (`profiling.execution.worker` in imports,
   `python -m profiling.execution.worker`, monkeypatch targets, docs, pyproject's script), file paths
   (`profiling/execution/worker.py`), and `from profiling import x` / `from profiling.cli.main import
   UsageError` forms (NAME_MOVES) through the AST;
3. fixes `Path(__file__)...parents[n]` in modules that moved one level deeper;
4. replaces tests/test_layers.py's LAYERS table (between `# layers:start` and `# layers:end`),
   README.md's "## Layout" section and profiling/README.md's module table with the files next
   to this script (restructure_layout.md, restructure_modules.md), when those anchors exist;
5. sorts the rewritten import blocks with ruff (`ruff check --fix --select I`) when .venv has it.

Afterwards: see the checklist printed at the end.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# old path under profiling/ -> new path under profiling/
MOVES: dict[str, str] = {
    # measurement: how long, how steady, against which roof, on what machine
    "timing.py": "measurement/timing.py",
    "stats.py": "measurement/stats.py",
    "roof.py": "measurement/roof.py",
    "noise.py": "measurement/noise.py",
    "env.py": "measurement/env.py",
    "machine.py": "measurement/machine.py",
    # traces: the model, readers, recording one, classification, breakdown, op stats
    "tracing.py": "traces/record.py",
    "analysis/classify.py": "traces/classify.py",
    "analysis/breakdown.py": "traces/breakdown.py",
    "analysis/op_stats.py": "traces/op_stats.py",
    # analysis: verdicts and comparisons drawn from measurements and traces
    "fusion.py": "analysis/fusion.py",
    "compare.py": "analysis/compare.py",
    "activation_stats.py": "analysis/activation_stats.py",
    "half_precision.py": "analysis/half_precision.py",
    # storage: SQLite store, schema, bundles
    "db.py": "storage/db.py",
    "pg_cluster.py": "storage/pg_cluster.py",
    "store.py": "storage/store.py",
    "migrations.py": "storage/migrations.py",
    "bundle.py": "storage/bundle.py",
    "bundle_check.py": "storage/bundle_check.py",
    # execution: isolated workers driven by the runner
    "runner.py": "execution/runner.py",
    "worker.py": "execution/worker.py",
    # experiments: whole models, distributed steps, remote capture, the guide's claims
    "scenarios.py": "experiments/scenarios.py",
    "guide_scenarios.py": "experiments/guide_scenarios.py",
    "distributed.py": "experiments/distributed.py",
    "capture.py": "experiments/capture.py",
    "claims.py": "experiments/claims.py",
    "training_watch.py": "experiments/training_watch.py",
    # presentation: figures, the HTML report, numbers for people
    "charts.py": "presentation/charts.py",
    "report.py": "presentation/report.py",
    "scenario_charts.py": "presentation/scenario_charts.py",
    "units.py": "presentation/units.py",
    "trace_charts.py": "presentation/trace_charts.py",
    "xprof_server.py": "presentation/xprof_server.py",
    "history.py": "presentation/history.py",
    # front ends: the CLI and its subcommand modules
    "cli.py": "cli/main.py",
    "cli_common.py": "cli/common.py",
    "scenario_cli.py": "cli/scenario.py",
    "claims_cli.py": "cli/claims.py",
    "delete_cli.py": "cli/delete.py",
    "trace_cli.py": "cli/trace.py",
    "team_cli.py": "cli/team.py",
    # benchmarks of the tool itself (make bench, bench-timeit, bench-traces)
    "op_bench.py": "bench/op.py",
    "timeit_check.py": "bench/timeit_check.py",
    "trace_bench.py": "bench/traces.py",
    "store_bench.py": "bench/store.py",
}

# modules that keep their place
STAYS = {
    "__init__.py", "__main__.py",
    "settings.py", "errors.py", "files.py", "process.py", "tempdirs.py",  # shared by all layers
    "spec.py",
    "traces/__init__.py", "traces/model.py", "traces/chrome.py", "traces/xplane.py",
    "traces/convert_child.py",
    "analysis/__init__.py", "analysis/activations.py", "analysis/diff.py",
}

PACKAGE_DOCS = {
    "measurement": "Measurement: the timing loop, statistics of samples, the memory roof, noise "
                   "verdicts, the machine's environment.",
    "traces": None,  # exists
    "analysis": "Analysis: verdicts and comparisons drawn from measurements and traces (fusion, "
                "run-to-run compare, activation audit, trace diff, activation statistics).",
    "storage": "Storage: the SQLite store (WAL, content-addressed traces), its migrations and "
               "the JSON bundles runs travel in.",
    "execution": "Execution: the runner and the isolated worker processes it drives.",
    "experiments": "Experiments beside execution: whole-model scenarios, the guide's scenarios "
                   "and claims, tf.distribute steps, remote capture. They use the same core.",
    "presentation": "Presentation: pure Plotly figures, the self-contained HTML report, units.",
    "cli": "Front end: `python -m profiling` / `relu-lab` (main) and its subcommand modules.",
    "bench": "Benchmarks of the tool itself: `make bench`, `make bench-timeit`, "
             "`make bench-traces`.",
}

# (old module, name) -> (old module it lives in now, its name there): names that left the
# module other branches import them from (the targets are mapped through MOVES too)
NAME_MOVES = {
    ("profiling.cli.main", "UsageError"): ("profiling.cli.common", "UsageError"),
    ("profiling.cli.main", "_store"): ("profiling.cli.common", "open_store"),
    ("profiling.experiments.scenarios", "_one_line"): ("profiling.errors", "one_line"),
    ("profiling.experiments.distributed", "child_env"): ("profiling.process", "child_env"),
    ("profiling.experiments.distributed", "exit_with_parent"): ("profiling.process", "exit_with_parent"),
    ("profiling.experiments.distributed", "free_port"): ("profiling.process", "free_port"),
    ("profiling.storage.store", "_pid_alive"): ("profiling.process", "pid_alive"),
    ("profiling.storage.bundle_check", "Column"): ("profiling.storage.store", "Column"),
}

LAYERS = '''LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("variants", ("relu_impls",)),
    ("shared", ("profiling", "profiling.settings", "profiling.errors", "profiling.files",
                "profiling.process", "profiling.tempdirs")),
    ("measurement", ("profiling.measurement",)),
    ("spec", ("profiling.spec",)),
    ("traces", ("profiling.traces",)),
    ("analysis", ("profiling.analysis",)),
    ("storage", ("profiling.storage",)),
    ("execution", ("profiling.execution",)),
    ("experiments", ("profiling.experiments",)),
    ("presentation", ("profiling.presentation",)),
    ("front ends", ("profiling.cli.main", "profiling.bench", "profiling.__main__")),
    ("dashboard", ("app",)),
]
'''

TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".txt", ".yml", ".yaml", ".sh", ".json",
                 ".cc", ".h"}
TEXT_NAMES = {"Makefile", "run"}
SKIP_DIRS = ("tests/fixtures/", ".venv")


def module_of(rel: str) -> str:
    """'analysis/op_stats.py' -> 'profiling.traces.op_stats'; '__init__.py' -> 'profiling'."""
    parts = ["profiling", *Path(rel).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def die(message: str) -> None:
    print(f"restructure: {message}", file=sys.stderr)
    sys.exit(2)


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def check_mapping() -> list[tuple[str, str]]:
    if not Path("profiling/__init__.py").is_file():
        die("run me from the root of a ReLU Lab checkout")
    if Path("profiling/cli").exists() or Path("profiling/storage").exists():
        die("profiling/ is already restructured")
    present = sorted(str(p.relative_to("profiling")) for p in Path("profiling").rglob("*.py")
                     if "__pycache__" not in p.parts)
    unknown = [p for p in present if p not in MOVES and p not in STAYS]
    if unknown:
        die("no mapping for these modules; add each to MOVES or STAYS in this script:\n  "
            + "\n  ".join(f"profiling/{p}" for p in unknown))
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                            check=True, capture_output=True, text=True).stdout
    if status.strip():
        die("the tree has uncommitted changes; commit or stash them first")
    return [(old, new) for old, new in MOVES.items() if old in present]


def move(moves: list[tuple[str, str]]) -> None:
    for old, new in moves:
        target = Path("profiling") / new
        target.parent.mkdir(parents=True, exist_ok=True)
        run("git", "mv", f"profiling/{old}", str(target))
    for package, doc in PACKAGE_DOCS.items():
        init = Path("profiling") / package / "__init__.py"
        if doc is None:
            continue
        if not init.parent.is_dir():
            continue
        init.write_text(f'"""{doc}"""\n')
        run("git", "add", str(init))


def dotted_rewriter(moves: list[tuple[str, str]]):
    names = {module_of(old): module_of(new) for old, new in moves}
    paths = {f"profiling/{old}": f"profiling/{new}" for old, new in moves}
    dotted = re.compile(r"(?<![\w.])(" + "|".join(
        re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")(?![\w])")
    slashed = re.compile(r"(?<![\w/])(" + "|".join(
        re.escape(p) for p in sorted(paths, key=len, reverse=True)) + r")(?![\w])")

    def rewrite(text: str) -> str:
        text = dotted.sub(lambda m: names[m.group(1)], text)
        return slashed.sub(lambda m: paths[m.group(1)], text)

    return rewrite, names


def helper_names() -> set[str]:
    """Top-level names of tests/helpers.py (the shared test helpers)."""
    path = Path("tests/helpers.py")
    if not path.is_file():
        return set()
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


WARNINGS: list[str] = []


def rewrite_from_imports(text: str, old_to_new: dict[str, str], path: str) -> str:
    """`from profiling import x`, `from profiling.cli.main import UsageError` (NAME_MOVES) and, in
    tests/, `from test_x import helper` -> `from helpers import helper` forms (after the dotted
    rewrite, so modules named in `from` are new names already)."""
    new_to_old = {v: k for k, v in old_to_new.items()}
    helpers = helper_names() if path.startswith("tests/") else set()
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        die(f"{path}: cannot parse: {e}")
    lines = text.splitlines(keepends=True)
    edits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            continue
        if node.module.startswith("test_") and helpers:
            missing = [a.name for a in node.names if a.name not in helpers]
            if missing:
                WARNINGS.append(f"{path}:{node.lineno}: imports {missing} from {node.module}: "
                                "move them to tests/helpers.py")
                continue
        elif not (node.module == "profiling" or node.module.startswith("profiling.")):
            continue
        old_module = new_to_old.get(node.module, node.module)
        groups: dict[str, list[str]] = {}
        changed = False
        for alias in node.names:
            local = alias.asname or alias.name
            target_module, name = node.module, alias.name
            if node.module.startswith("test_"):
                target_module = "helpers"
            elif (old_module, alias.name) in NAME_MOVES:
                old_target, name = NAME_MOVES[(old_module, alias.name)]
                target_module = old_to_new.get(old_target, old_target)
            elif f"{old_module}.{alias.name}" in old_to_new:  # a module imported by name
                target_module, _, name = old_to_new[f"{old_module}.{alias.name}"].rpartition(".")
            changed |= (target_module, name) != (node.module, alias.name)
            groups.setdefault(target_module, []).append(name if name == local
                                                        else f"{name} as {local}")
        if not changed:
            continue
        first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
        if first[:node.col_offset].strip() or ";" in last[node.end_col_offset:]:
            die(f"{path}:{node.lineno}: an import shares its line with other code; split it")
        indent = first[:node.col_offset]
        tail = last[node.end_col_offset:].rstrip("\n")
        statements = [f"{indent}from {m} import {', '.join(ns)}" for m, ns in groups.items()]
        statements[0] += tail
        edits.append((node.lineno - 1, node.end_lineno, "\n".join(statements) + "\n"))
    for start, end, new in sorted(edits, reverse=True):
        lines[start:end] = [new]
    return "".join(lines)


def fix_file_depth(moves: list[tuple[str, str]]) -> list[str]:
    """Modules one level deeper: Path(__file__)...parents[n] / .parent.parent keep pointing at
    the same folder. Returns the moved files that use __file__ otherwise, to check by hand."""
    check = []
    for old, new in moves:
        delta = len(Path(new).parts) - len(Path(old).parts)
        path = Path("profiling") / new
        text = path.read_text()
        if "__file__" not in text or delta == 0:
            continue
        fixed = re.sub(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]",
                       lambda m, delta=delta: f"Path(__file__).resolve().parents[{int(m.group(1)) + delta}]",
                       text)
        fixed = re.sub(r"Path\(__file__\)\.resolve\(\)\.parent\.parent(?![\w.])",
                       f"Path(__file__).resolve().parents[{1 + delta}]", fixed)
        path.write_text(fixed)
        rest = [ln.strip() for ln in fixed.splitlines()
                if "__file__" in ln and "parents[" not in ln]
        if rest:
            check.append(f"profiling/{new}: {rest}")
    return check


def replace_between(path: Path, start: str, end: str | None, new: str, what: str) -> str:
    if not path.is_file():
        return f"{path} missing: {what} not replaced"
    text = path.read_text()
    i = text.find(start)
    if i < 0:
        return f"{path}: anchor {start!r} not found: {what} not replaced (paste it by hand)"
    j = text.find(end, i + len(start)) if end else -1
    if end and j < 0:
        return f"{path}: end anchor {end!r} not found: {what} not replaced"
    path.write_text(text[:i] + new + (text[j:] if end else ""))
    return f"{path}: {what} replaced"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    moves = check_mapping()
    for old, new in moves:
        print(f"  profiling/{old} -> profiling/{new}")
    if args.dry_run:
        return 0
    move(moves)
    rewrite, old_to_new = dotted_rewriter(moves)
    changed = []
    for name in tracked_files():
        path = Path(name)
        if name.startswith(SKIP_DIRS) or not path.is_file():
            continue
        if path.suffix not in TEXT_SUFFIXES and path.name not in TEXT_NAMES:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = rewrite(text)
        if path.suffix == ".py":
            new = rewrite_from_imports(new, old_to_new, name)
        if new != text:
            path.write_text(new)
            changed.append(name)
    by_hand = fix_file_depth(moves)
    notes = [
        replace_between(Path("tests/test_layers.py"), "# layers:start\n", "# layers:end",
                        "# layers:start\n" + LAYERS, "the LAYERS table"),
    ]
    layout = HERE / "restructure_layout.md"
    if layout.is_file():
        notes.append(replace_between(Path("README.md"), "## Layout\n", "\n## ",
                                     layout.read_text().rstrip() + "\n",
                                     "the Layout section"))
    modules = HERE / "restructure_modules.md"
    if modules.is_file():
        notes.append(replace_between(Path("profiling/README.md"), "| module | what it does |",
                                     "\n\n", modules.read_text().rstrip(), "the module table"))
    ruff = Path(".venv/bin/ruff")
    py_changed = [c for c in changed if c.endswith(".py") and Path(c).exists()]
    if ruff.exists() and py_changed:
        subprocess.run([str(ruff), "check", "--fix", "--select", "I", "-q", *py_changed],
                       check=False)
    run("git", "add", "-A", "profiling", "tests", "app", "relu_impls")
    run("git", "add", "-u")
    print(f"moved {len(moves)} modules, rewrote {len(changed)} files")
    for note in notes:
        print(f"  {note}")
    if by_hand:
        print("check these __file__ uses by hand:\n  " + "\n  ".join(by_hand))
    if WARNINGS:
        print("left for you:\n  " + "\n  ".join(WARNINGS))
    print("""
next (nothing is committed):
  .venv/bin/ruff check .
  .venv/bin/python -m pytest -q tests/test_layers.py tests/test_settings.py
  .venv/bin/python -m pytest --collect-only -q | tail -1
  .venv/bin/python -m profiling --help; (cd / && /path/to/.venv/bin/relu-lab --help)
  git grep -nE 'profiling[./](runner|worker|store|cli_common|op_bench|tracing)\\b' (expect none)
  git commit -m 'profiling/ laid out along its data flow'""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
