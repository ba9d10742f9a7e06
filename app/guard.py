"""Keep tracebacks off the page: any failure becomes one clear line."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import streamlit as st

from profiling.errors import one_line
from profiling.storage.stored_json import warnings_to

log = logging.getLogger("relu_lab.app")


@contextlib.contextmanager
def page_guard(what: str) -> Iterator[None]:
    """Show ``st.error("<what> failed: <reason>")`` instead of a traceback; log the traceback.
    Stored data skipped as unreadable (profiling.storage.stored_json) is an ``st.warning``.

    st.rerun/st.stop raise BaseException subclasses, so they pass through untouched."""
    try:
        with warnings_to(lambda line: st.warning(f"Skipped stored data: {line}",
                                                 icon=":material/warning:")):
            yield
    except Exception as error:  # noqa: BLE001 - the page must never show a traceback
        log.exception("%s failed", what)
        st.error(f"{what} failed: {one_line(error)}")
