"""The bounded reader refuses what it should, at once, and reads what it should."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from profiling.files import FileRefused, read_bounded


def test_reads_a_regular_file(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_bytes(b"{}")
    assert read_bounded(p, 10) == b"{}"


def test_refuses_over_the_limit_before_reading(tmp_path: Path) -> None:
    p = tmp_path / "big.json"
    p.write_bytes(b"x" * 100)
    with pytest.raises(FileRefused, match="over the bundle size limit"):
        read_bounded(p, 99, "bundle")


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom"])
def test_refuses_devices_at_once(path: str) -> None:
    with pytest.raises(FileRefused, match="not a regular file"):
        read_bounded(path, 1 << 20)


def test_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result: list = []

    def attempt() -> None:
        try:
            read_bounded(fifo, 10)
        except FileRefused as e:
            result.append(str(e))

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "read_bounded blocked on a FIFO"
    assert result and "not a regular file" in result[0]


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileRefused, match="no such file"):
        read_bounded(tmp_path / "nope", 10)
    with pytest.raises(FileRefused, match="is a directory"):
        read_bounded(tmp_path, 10)
