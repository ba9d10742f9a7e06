"""Variants page: every ReLU implementation, its parameters and its edge-case semantics."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import resources, share, tables
from app.guard import page_guard
from profiling.presentation import charts


def variant_rows(registry: dict) -> pd.DataFrame:
    rows = []
    for variant in registry.values():
        # Param.accepted() also says whether the minimum is exclusive (clip > 0, not >= 0).
        params = "; ".join(f"{p.name}={p.default:g}, {p.accepted()}"
                           for p in (variant.params or {}).values())
        rows.append(dict(
            id=variant.id, name=variant.name, description=variant.description,
            dtypes=", ".join(variant.dtypes), params=params,
            grad_at_zero=variant.grad_at_zero, nan=variant.nan_semantics,
            xla=variant.xla_compilable, fuses_with_conv=variant.fuses_with_conv,
            needs_build=variant.needs_build,
        ))
    return pd.DataFrame(rows)


def render() -> None:
    st.title("Variants")
    tables.show(variant_rows(resources.variants()), key="variants_table")
    st.subheader("Edge-case semantics")
    table = resources.semantics_table()
    dtypes = sorted(table["dtype"].astype(str).unique())
    wanted = share.read("dtype", "float32")
    wanted = wanted if wanted in dtypes else dtypes[0]
    share.seed_widget("semantics_dtype", dtypes, wanted)
    dtype = st.selectbox("Dtype", dtypes, key="semantics_dtype")
    share.write(dtype=dtype)
    st.plotly_chart(charts.semantics_matrix(table, dtype=dtype), key="chart_semantics")
    with st.expander("Full table (every variant × dtype)"):
        tables.show(table.astype(str), key="semantics_table")
    claims_section()


def claims_section() -> None:
    """The guide's claims: the newest stored claims run, and a button to measure them now."""
    from profiling.experiments import claims
    from profiling.presentation.claims import shown

    st.subheader("Guide claims")
    st.caption("Each quantitative claim of the guide, measured on this machine: timing claims "
               "as speedups from paired rounds (95% CI), eager as the guide measured them and "
               "in tf.function; the others from the newest stored guide scenarios "
               "(`python -m profiling claims`).")
    if st.button("Measure the claims now", key="claims_run"):
        with page_guard("Measuring the claims"), st.spinner("Measuring… (a minute or two)"):
            claims.claims_table(resources.store(), rounds=7, min_time=0.02)
    found = claims.stored_claims(resources.store())
    if found is None:
        st.info("No claims measured yet: press the button or run `python -m profiling claims`.")
        return
    run_id, table = found
    st.caption(f"From run {run_id}.")
    tables.show(shown(table), key="claims_table")


with page_guard("The Variants page"):
    render()
