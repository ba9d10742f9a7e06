"""Cached handles and data the pages share (TensorFlow and the store are slow to open)."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from profiling.store import Store, default_data_dir


def data_dir() -> str:
    """The store in use now ($RELU_LAB_STORE, else the data dir $RELU_LAB_DATA or
    ./.relu_lab), as a cache key."""
    return os.environ.get("RELU_LAB_STORE") or str(default_data_dir().resolve())


@st.cache_resource(show_spinner=False)
def _store_for(path: str) -> Store:
    return Store(path)


def store() -> Store:
    """The store of the current data dir (one thread-safe handle per process and dir)."""
    return _store_for(data_dir())


@st.cache_resource(show_spinner="Asking TensorFlow which devices it sees…")
def devices() -> list[str]:
    """Devices TensorFlow sees here, e.g. ['CPU:0']."""
    from profiling.spec import available_devices

    return available_devices()


@st.cache_resource(show_spinner="Loading the ReLU variants…")
def variants() -> dict:
    """id -> Variant, in the registry's order (the spec's registry, test variants included)."""
    from profiling.spec import variant_registry

    return variant_registry()


@st.cache_data(show_spinner="Checking every variant's edge cases…")
def semantics_table() -> pd.DataFrame:
    """relu_impls.semantics.semantics_table(), computed once per process."""
    from relu_impls.semantics import semantics_table as compute

    return compute()


def cpu_count() -> int:
    return os.cpu_count() or 1


def list_runs() -> pd.DataFrame:
    """All runs, newest first."""
    runs = store().list_runs()
    if not runs.empty and "created_at" in runs.columns:
        runs = runs.sort_values("created_at", ascending=False, kind="stable")
    return runs.reset_index(drop=True)


@st.cache_data(ttl=10, show_spinner=False)
def cases(run_ids: tuple[str, ...], store_dir: str) -> pd.DataFrame:
    """store.cases of the store in ``store_dir`` (part of the cache key: a leading underscore
    would leave it out, and another data dir's cases could be served)."""
    return _store_for(store_dir).cases(list(run_ids))


def run_cases(run_ids: list[str]) -> pd.DataFrame:
    """store.cases for these runs (cached briefly: a running run still adds cases)."""
    return cases(tuple(run_ids), data_dir())
