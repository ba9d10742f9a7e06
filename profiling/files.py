"""Reading user-supplied files safely: regular files only, size checked before reading, and a
bounded read, so a FIFO, /dev/zero or a file that grows while read cannot get past the limit;
and placing a file where a viewer reads it, whole or not at all (`place`)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO


class FileRefused(ValueError):
    """The file cannot be read within the rules; str() is one line naming the file and why."""


def _size_text(n: int) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def open_bounded(path: str | os.PathLike, limit: int, what: str = "file") -> BinaryIO:
    """An open regular file of at most `limit` bytes (for reading in chunks); FileRefused
    otherwise. Same checks as read_bounded; the caller still stops reading past `limit`."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FileRefused(f"no such file: {p}") from None
    except IsADirectoryError:
        raise FileRefused(f"{p} is a directory, not a {what}") from None
    except PermissionError:
        raise FileRefused(f"cannot read {p}: permission denied") from None
    except OSError as e:
        raise FileRefused(f"cannot read {p}: {e.strerror or e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileRefused(f"{p} is a directory, not a {what}")
        raise FileRefused(f"{p} is not a regular file (a device, FIFO or socket); "
                          f"a {what} must be a regular file")
    if st.st_size > limit:
        os.close(fd)
        raise FileRefused(f"{p.name} is {_size_text(st.st_size)}, over the {what} size "
                          f"limit of {_size_text(limit)}")
    return os.fdopen(fd, "rb")


def read_bounded(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The whole of a regular file of at most `limit` bytes; FileRefused otherwise.

    The file is opened without blocking (a FIFO with no writer would block open()), checked to
    be regular with fstat on the open descriptor (no race with a swapped path), and read up to
    limit + 1 bytes at most.
    """
    p = Path(path)
    with open_bounded(p, limit, what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise FileRefused(f"cannot read {p}: {e.strerror or e}") from None
    if len(data) > limit:
        raise FileRefused(f"{p.name} grew past the {what} size limit of {_size_text(limit)} "
                          "while being read")
    return data


def place(source: str | os.PathLike | bytes, target: Path) -> None:
    """Put `source` (a file, hard-linked or else copied; or bytes) at `target` atomically, so a
    reader never sees half of it."""
    tmp = target.with_suffix(target.suffix + ".tmp")
    if isinstance(source, bytes):
        tmp.write_bytes(source)
    else:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
    os.replace(tmp, target)
