"""Settings in one place: every user-facing RELU_LAB_* variable the code reads is listed in
profiling.settings.SETTINGS and in the README's settings table; extra variants load through
their hook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from profiling import settings

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"(?<![A-Z0-9_])RELU_LAB_[A-Z0-9_]+")


def names_read_in_code() -> set[str]:
    """RELU_LAB_* names in the Python sources, the Makefile and the op's getenv calls (C++
    macros named RELU_LAB_* are not variables)."""
    found = set()
    for pkg in ("profiling", "relu_impls", "app", "tests"):
        for path in (REPO / pkg).rglob("*.py"):
            found |= set(NAME.findall(path.read_text()))
    found |= set(NAME.findall((REPO / "Makefile").read_text()))
    for path in (REPO / "csrc").rglob("*"):
        if path.is_file():
            found |= set(re.findall(r'getenv\("(RELU_LAB_[A-Z0-9_]+)"\)', path.read_text()))
    return {n for n in found if not n.endswith("_") and n != "RELU_LAB_INTERNAL_"}


def test_every_variable_the_code_reads_is_a_listed_setting():
    listed = {s.name for s in settings.SETTINGS}
    assert names_read_in_code() == listed


def test_the_readme_settings_table_lists_every_setting():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Settings"):]
    section = section[:section.index("\n## ", 1)]
    rows = set(re.findall(r"^\| `(RELU_LAB_[A-Z0-9_]+)`", section, flags=re.M))
    assert rows == {s.name for s in settings.SETTINGS}


def test_settings_are_read_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("RELU_LAB_DATA", str(tmp_path))
    monkeypatch.setenv("RELU_LAB_MAX_TRACE_BYTES", "1e6")
    monkeypatch.setenv("RELU_LAB_EXTRA_VARIANTS", " a.b , ,c")
    assert settings.data_dir() == tmp_path
    assert settings.max_trace_bytes() == 1_000_000
    assert settings.extra_variant_modules() == ["a.b", "c"]
    monkeypatch.setenv("RELU_LAB_MAX_TRACE_BYTES", "lots")
    assert settings.max_trace_bytes() == settings.DEFAULT_MAX_TRACE_BYTES


def test_network_timeouts_are_read_when_asked(monkeypatch):
    for name in ("RELU_LAB_DB_CONNECT_TIMEOUT_S", "RELU_LAB_DB_STATEMENT_TIMEOUT_S",
                 "RELU_LAB_CAPTURE_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    assert (settings.db_connect_timeout_s(), settings.db_statement_timeout_s(),
            settings.capture_timeout_s()) == (10, 600.0, 60.0)
    monkeypatch.setenv("RELU_LAB_DB_CONNECT_TIMEOUT_S", "0.5")  # libpq waits 2 s at least
    monkeypatch.setenv("RELU_LAB_DB_STATEMENT_TIMEOUT_S", "1.5")
    monkeypatch.setenv("RELU_LAB_CAPTURE_TIMEOUT_S", "-3")
    assert (settings.db_connect_timeout_s(), settings.db_statement_timeout_s(),
            settings.capture_timeout_s()) == (2, 1.5, 60.0)
    monkeypatch.setenv("RELU_LAB_DB_CONNECT_TIMEOUT_S", "7.9")
    assert settings.db_connect_timeout_s() == 7


def test_extra_variants_are_real_variants_or_a_one_line_error(faulty_variants):
    from profiling.spec import RunSpec, variant_registry
    from relu_impls import Variant, extra_variants

    registry = variant_registry()
    assert all(isinstance(registry[v], Variant) for v in faulty_variants)
    assert RunSpec(variants=["_test_raise"], shapes=[(10,)], threads=[1]).validate()
    with pytest.raises(ValueError, match="'no_such_module' cannot be imported"):
        extra_variants.load(["no_such_module"])
    with pytest.raises(ValueError, match="a VARIANTS dict"):
        extra_variants.load(["json"])
    with pytest.raises(ValueError, match="'_test_segfault' is taken"):
        extra_variants.load(["faulty_variants", "faulty_variants"])
