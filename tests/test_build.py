"""relu_impls.build with the real compiler: cache keys, rebuilds, and errors that say the fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from relu_impls import build


@pytest.fixture(scope="module")
def built() -> dict:
    return build.build()


def test_build_is_a_no_op_when_current(built):
    again = build.build()
    assert again["built_at"] == built["built_at"] and again["path"] == built["path"]
    assert Path(built["path"]).is_file()
    cfg = build.config()
    assert cfg.library == Path(built["path"]) and build.is_current(cfg)


def test_library_lives_outside_the_repository(built):
    repo = Path(__file__).resolve().parents[1]
    assert repo not in Path(built["path"]).resolve().parents
    assert not list(repo.glob("**/custom_relu.so"))


def test_cache_key_covers_flags_tf_version_and_sources(built):
    cfg = build.config()
    assert cfg.tf_version in built["tf_version"]
    assert built["key"] == cfg.key == Path(built["path"]).parent.name
    with_other_flags = build.BuildConfig(**{**cfg.__dict__, "cxxflags": (*cfg.cxxflags, "-g")})
    assert with_other_flags.key != cfg.key
    with_other_nvcc = build.BuildConfig(**{**cfg.__dict__, "nvcc_version": "release 99.0"})
    assert with_other_nvcc.key != cfg.key


def test_any_new_csrc_file_changes_the_keys(tmp_path):
    # An #included file need not end in .h: every file in csrc/ is an input.
    csrc = tmp_path / "csrc"
    shutil.copytree(build.REPO_CSRC, csrc)
    before = build.config(csrc=csrc, cache_root=tmp_path / "cache")
    objects_before = [build.object_path(before, unit) for unit in build.CPU_SOURCES]
    (csrc / "tables.inc").write_text("// included by a kernel\n")
    after = build.config(csrc=csrc, cache_root=tmp_path / "cache")
    assert after.key != before.key
    for unit, object_before in zip(build.CPU_SOURCES, objects_before, strict=True):
        assert build.object_path(after, unit) != object_before


def test_rebuilds_into_a_new_key_when_a_source_changes(built, tmp_path, monkeypatch):
    csrc = tmp_path / "csrc"
    shutil.copytree(build.REPO_CSRC, csrc)
    cache = tmp_path / "cache"
    # A warm cache: objects of unchanged sources are reused, so only relu_ops.cc recompiles.
    seeded = Path(built["path"]).parent.parent / "objects"
    if seeded.is_dir():
        shutil.copytree(seeded, cache / "objects")
    monkeypatch.setenv("RELU_LAB_CSRC", str(csrc))
    monkeypatch.setenv("RELU_LAB_CACHE", str(cache))
    assert build.config().key == built["key"]  # same sources, same key, wherever they live

    before = set(os.listdir(cache / "objects")) if seeded.is_dir() else set()
    ops = csrc / "relu_ops.cc"
    ops.write_text(ops.read_text().replace("Rectified linear unit", "Rectified linear unit (v2)"))
    cfg = build.config()
    assert cfg.key != built["key"] and not build.is_current(cfg)
    info = build.build()
    assert info["source_hash"] == cfg.source_hash != built["source_hash"]
    assert Path(info["path"]) == cache / cfg.key / "custom_relu.so"
    assert build.build()["built_at"] == info["built_at"]  # current now: no second compile
    assert not [p for p in (cache / cfg.key).iterdir() if p.name.startswith(".build-")]
    compiled = sorted(name.split("-")[0] for name in set(os.listdir(cache / "objects")) - before)
    kernels_cached = build.object_path(cfg, "relu_kernels.cc").name in before
    assert compiled == (["relu_ops.cc"] if kernels_cached else ["relu_kernels.cc", "relu_ops.cc"])

    # The rebuilt library loads and carries the changed source.
    probe = (
        "import sys, tensorflow as tf; m = tf.load_op_library(sys.argv[1]);"
        "print(m.custom_relu([-1.0, 2.0]).numpy().tolist());"
        "print('(v2)' in m.custom_relu.__doc__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, info["path"]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[0.0,", "2.0]", "True"]


def test_missing_compiler_raises_build_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    with pytest.raises(build.BuildError, match=r"apt-get install g\+\+.*CXX"):
        build.build(cache_root=tmp_path / "cache")


def test_empty_path_raises_build_error(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(build.BuildError, match=r"'g\+\+' not found on PATH.*apt-get install g\+\+"):
        build.config(cache_root=tmp_path / "cache")


def test_compile_error_carries_the_compiler_output(monkeypatch, tmp_path):
    csrc = tmp_path / "csrc"
    shutil.copytree(build.REPO_CSRC, csrc)
    (csrc / "relu_kernels.cc").write_text("#error relu_lab_test_marker\n")
    with pytest.raises(build.BuildError) as caught:
        build.build(csrc=csrc, cache_root=tmp_path / "cache")
    message = str(caught.value)
    assert "relu_kernels.cc" in message and "relu_lab_test_marker" in message
    assert "apt-get install g++" in message


def test_command_line_builds_and_prints_the_path(built):
    out = subprocess.run(
        [sys.executable, "-m", "relu_impls.build"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr
    assert built["path"] in out.stdout


def test_command_line_reports_build_errors(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "relu_impls.build", "--cache", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "CXX": "/nonexistent/g++", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 1
    assert "error:" in out.stderr and "apt-get install g++" in out.stderr


def test_traces_native_library_builds_into_its_own_cache_entry(tmp_path):
    cache = tmp_path / "cache"
    library = build.build_scanner(cache_root=cache)
    assert library == build.scanner_library(cache_root=cache) and library.is_file()
    built = library.stat().st_mtime_ns
    assert build.build_scanner(cache_root=cache).stat().st_mtime_ns == built  # current: kept
    csrc = tmp_path / "csrc"
    shutil.copytree(build.REPO_CSRC, csrc)
    scan = csrc / "trace_scan.cc"
    scan.write_text(scan.read_text() + "\n// changed\n")
    assert build.scanner_library(csrc, cache) != library  # a new source, a new key
    assert build.config(csrc=csrc, cache_root=cache).key == build.config(cache_root=cache).key
