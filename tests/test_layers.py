"""The architecture, checked from the code's own imports: no import cycle between modules, and
no module imports from a layer above its own. Every import counts, at module level or inside a
function. The layer table is the one place the order is declared."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("relu_impls", "profiling", "app")

# Lowest first. A module belongs to the entry with the longest matching prefix (the module
# itself or a package above it); it may import its own layer and those listed before it.
# layers:start
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("variants", ("relu_impls",)),
    ("shared", ("profiling", "profiling.settings", "profiling.errors", "profiling.files",
                "profiling.process", "profiling.tempdirs", "profiling.plain")),
    ("measurement", ("profiling.measurement",)),
    ("spec", ("profiling.spec",)),
    ("traces", ("profiling.traces",)),
    ("analysis", ("profiling.analysis",)),
    ("models", ("profiling.models",)),
    ("storage", ("profiling.storage",)),
    ("execution", ("profiling.execution",)),
    ("experiments", ("profiling.experiments",)),
    ("presentation", ("profiling.presentation",)),
    ("front ends", ("profiling.cli", "profiling.bench", "profiling.__main__")),
    ("dashboard", ("app",)),
]
# layers:end


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def imports(path: Path, known: set[str], self_name: str) -> set[str]:
    """Project modules that `path` imports anywhere in its code (`from pkg import mod` counts
    as importing pkg.mod; `from pkg import name` as importing pkg)."""
    out = set()
    package = self_name if path.name == "__init__.py" else self_name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in out if m in known and m != self_name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods), name) for name, path in mods.items()}


def layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in modules() if layer_of(m) is None)
    assert not unplaced, f"add these modules to LAYERS in tests/test_layers.py: {unplaced}"


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_module_imports_a_higher_layer():
    upward = []
    for module, targets in graph().items():
        own = layer_of(module)
        for target in sorted(targets):
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} ({LAYERS[own][0]}) imports {target} "
                              f"({LAYERS[theirs][0]})")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert cycles(edges) == expected


def test_imports_are_read_at_every_level(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from lab import low\n"
                      "def f():\n    from lab.mid import name\n"
                      "    import base.util\n")
    known = {"lab", "lab.low", "lab.mid", "lab.m", "base.util"}
    assert imports(source, known, "lab.m") == {"lab.low", "lab.mid", "base.util"}
