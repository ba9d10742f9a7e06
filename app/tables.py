"""Tables drawn at their full height: every row visible up to PAGE_ROWS, then pages of
PAGE_ROWS with a row count, instead of st.dataframe's fixed frame of ~10 rows."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

ROW_PX = 35  # st.dataframe's row height, the header row included
PAGE_ROWS = 50


def height(rows: int) -> int:
    """Pixels that show ``rows`` rows (at most PAGE_ROWS) and the header without a scrollbar."""
    return (min(max(rows, 1), PAGE_ROWS) + 1) * ROW_PX + 3


def page_of(frame: pd.DataFrame, page: int) -> pd.DataFrame:
    """Rows of page ``page`` (1-based, clamped to the pages there are)."""
    pages = max(1, -(-len(frame) // PAGE_ROWS))
    page = min(max(int(page), 1), pages)
    return frame.iloc[(page - 1) * PAGE_ROWS: page * PAGE_ROWS]


def show(data: pd.DataFrame | Styler, key: str, style: Callable[[pd.DataFrame], object] | None = None,
         **kwargs) -> None:
    """``data`` at full height (index hidden unless ``hide_index=False``). A DataFrame longer
    than PAGE_ROWS is paged (``style`` is applied to the page shown, e.g. units.readable); a
    long Styler scrolls inside PAGE_ROWS rows. Either way a caption gives the row count."""
    kwargs.setdefault("hide_index", True)
    rows = len(data.data if isinstance(data, Styler) else data)
    shown = data
    if isinstance(data, pd.DataFrame) and rows > PAGE_ROWS:
        pages = -(-rows // PAGE_ROWS)
        page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"{key}_page")
        shown = page_of(data, page)
        first = (min(max(int(page), 1), pages) - 1) * PAGE_ROWS
        st.caption(f"Rows {first + 1}–{first + len(shown)} of {rows}")
    elif rows > PAGE_ROWS:
        st.caption(f"{rows} rows: the table scrolls")
    if style is not None and isinstance(shown, pd.DataFrame):
        shown = style(shown)
    st.dataframe(shown, key=key, height=height(len(shown.data if isinstance(shown, Styler)
                                                   else shown)), **kwargs)
