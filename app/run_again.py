""""Run again": open the Run page with a stored run's settings in its form."""

from __future__ import annotations

import streamlit as st

from app import resources, run_form
from app.guard import one_line
from profiling.storage.stored_json import decode

FORM_STATE, RESEED = "run_form", "run_form_reseed"  # app/views/run.py reads these


def stored_form(run_id: str) -> dict:
    """The Run form that reproduces ``run_id``'s spec; ValueError (one line) when the run was
    not a profile (a scenario, a capture) or its spec cannot be read."""
    row = resources.run(run_id)
    try:
        spec = decode(row.get("spec_json"), "spec_json", run_id)
        defaults = run_form.form_defaults(list(resources.variants()), resources.devices(),
                                          resources.cpu_count())
        return run_form.form_from_spec(spec, defaults)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"run {run_id} has no profile settings to run again "
                         f"({one_line(error)})") from None


def button(run_id: str, key: str) -> None:
    """A small "Run again" button that pre-fills the Run page's form from ``run_id``."""
    if not st.button("Run again", key=key, icon=":material/replay:",
                     help="Open the Run page with this run's settings"):
        return
    try:
        form = stored_form(run_id)
    except ValueError as error:
        st.error(one_line(error))
        return
    st.session_state[FORM_STATE] = form
    st.session_state[RESEED] = True
    st.switch_page("views/run.py")


def buttons(run_ids: list[str]) -> None:
    """One "Run again" button per run (at most four in a row; the rest are left out)."""
    shown = run_ids[:4]
    for column, run_id in zip(st.columns(max(len(shown), 4)), shown, strict=False):
        with column:
            label = run_id if len(shown) > 1 else ""
            if label:
                st.caption(label)
            button(run_id, key=f"run_again_{run_id}")
