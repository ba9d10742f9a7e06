"""Cached handles and data the pages share (TensorFlow and the store are slow to open)."""

from __future__ import annotations

import gc
import os

import pandas as pd
import streamlit as st

from profiling import settings
from profiling.storage.store import Store, default_data_dir


def data_dir() -> str:
    """The store in use now ($RELU_LAB_STORE, else the data dir $RELU_LAB_DATA or
    ./.relu_lab), as a cache key."""
    return settings.store_url() or str(default_data_dir().resolve())


@st.cache_resource(show_spinner=False)
def _store_for(path: str) -> Store:
    store = Store(path)
    store.recover()  # the dashboard runs, imports and deletes: clean up after dead processes
    return store


def store() -> Store:
    """The store of the current data dir (one thread-safe handle per process and dir)."""
    return _store_for(data_dir())


def _freeze_heap() -> None:
    """Leave what is loaded now (TensorFlow, Keras: millions of objects) out of every later
    garbage collection. Streamlit collects after each rerun and clears Keras' session before
    it, which collects again: ~0.35 s per rerun each on the 2-vCPU machine, ~10 ms after this."""
    gc.collect()
    gc.freeze()


@st.cache_resource(show_spinner="Asking TensorFlow which devices it sees…")
def devices() -> list[str]:
    """Devices TensorFlow sees here, e.g. ['CPU:0']."""
    from profiling.spec import available_devices

    found = available_devices()
    _freeze_heap()
    return found


@st.cache_resource(show_spinner="Loading the ReLU variants…")
def variants() -> dict:
    """id -> Variant, in the registry's order (the spec's registry, extra variants included
    except those whose id starts with `_`: test scaffolding, never shown)."""
    from profiling.spec import variant_registry

    registry = {vid: v for vid, v in variant_registry().items() if not vid.startswith("_")}
    _freeze_heap()
    return registry


@st.cache_data(show_spinner="Checking every variant's edge cases…")
def semantics_table() -> pd.DataFrame:
    """relu_impls.semantics.semantics_table(), computed once per process."""
    from relu_impls.semantics import semantics_table as compute

    return compute()


def cpu_count() -> int:
    return os.cpu_count() or 1


def data_version() -> tuple:
    """The store's data version (runs, cases, finished runs…): part of every cached read's key,
    so a new run or case shows at once and nothing is read twice while nothing changed."""
    current = store()
    current.mark_stale_runs()  # a run whose process died counts as finished
    return current.data_version()


@st.cache_data(show_spinner=False, max_entries=16)
def _runs(store_dir: str, version: tuple) -> pd.DataFrame:
    runs = _store_for(store_dir).list_runs()
    if not runs.empty and "created_at" in runs.columns:
        runs = runs.sort_values("created_at", ascending=False, kind="stable")
    return runs.reset_index(drop=True)


def list_runs() -> pd.DataFrame:
    """All runs, newest first."""
    return _runs(data_dir(), data_version())


@st.cache_data(show_spinner=False, max_entries=64)
def cases(run_ids: tuple[str, ...], store_dir: str, version: tuple = ()) -> pd.DataFrame:
    """store.cases of the store in ``store_dir`` (part of the cache key: a leading underscore
    would leave it out, and another data dir's cases could be served) at data ``version``."""
    return _store_for(store_dir).cases(list(run_ids))


def run_cases(run_ids: list[str]) -> pd.DataFrame:
    """store.cases for these runs, read again only when the store's data changed."""
    return cases(tuple(run_ids), data_dir(), data_version())


@st.cache_data(show_spinner=False, max_entries=64)
def _run(run_id: str, store_dir: str, version: tuple) -> dict:
    return _store_for(store_dir).run(run_id)


def run(run_id: str) -> dict:
    """The runs row of ``run_id`` (spec_json, status, noise_verdict, noise_json…)."""
    return _run(run_id, data_dir(), data_version())


@st.cache_data(show_spinner=False, max_entries=16)
def _traced(run_ids: tuple[str, ...], store_dir: str, version: tuple) -> frozenset[str]:
    return frozenset(_store_for(store_dir).trace_paths(list(run_ids)))


def traced_cases(run_ids: list[str]) -> frozenset[str]:
    """The case ids of these runs that have a stored trace file."""
    return _traced(tuple(run_ids), data_dir(), data_version())
