"""Shareable view state in the URL's query parameters (lists are comma-separated)."""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st


def read_list(name: str) -> list[str]:
    """``?name=a,b`` -> ['a', 'b']; missing -> []."""
    raw = st.query_params.get(name, "")
    return [part for part in str(raw).split(",") if part]


def read(name: str, default: str = "") -> str:
    return str(st.query_params.get(name, default))


def write(**values: str | Iterable[str] | None) -> None:
    """Set (or remove, for empty values) query parameters, only touching ones that change."""
    for name, value in values.items():
        text = value if isinstance(value, str) or value is None else ",".join(map(str, value))
        if not text:
            if name in st.query_params:
                del st.query_params[name]
        elif st.query_params.get(name) != text:
            st.query_params[name] = text


def keep_known(wanted: list[str], known: Iterable[str]) -> list[str]:
    """The wanted values that exist, in order (a stale link must not break the page)."""
    known = list(known)
    return [value for value in wanted if value in known]


def seed_widget(key: str, options: list, wanted: str | list[str]) -> None:
    """Seed a widget's state from the URL (first visit) and drop choices that no longer exist;
    the widget is then created without a default so Streamlit has one source of truth.
    ``wanted`` is a list for a multiselect, one value for a selectbox."""
    current = st.session_state.get(key)
    if isinstance(wanted, list):
        valid = current is not None and all(value in options for value in current)
    else:
        valid = current in options
    if not valid:
        st.session_state[key] = wanted
