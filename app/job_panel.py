"""Live progress and a Cancel button for a background job (``app.run_job``) kept in
st.session_state; one full rerun of the page when it ends."""

from __future__ import annotations

import streamlit as st

from app.run_job import Job

POLL_S = 0.5


def running(state_key: str) -> bool:
    job: Job | None = st.session_state.get(state_key)
    return job is not None and not job.finished


def progress_panel(state_key: str, what: str, unit: str, cancel_key: str) -> Job | None:
    """While ``st.session_state[state_key]`` runs, poll it every POLL_S ('<what>… 3/10 <unit>',
    a Cancel button) and rerun the page once it ends. Returns the job (None: none started)."""
    if not running(state_key):
        return st.session_state.get(state_key)

    @st.fragment(run_every=POLL_S)
    def poll() -> None:
        job: Job | None = st.session_state.get(state_key)
        if job is None:
            return
        if not job.finished:
            # Not a `with` block: leaving one marks the status complete.
            status = st.status(f"{what}… {job.done}/{job.total} {unit}", state="running",
                               expanded=True)
            status.progress(job.fraction, text=f"{job.current} ({job.elapsed_s:.0f} s)")
            if job.cancel.is_set():
                status.caption("Cancelling after the current step…")
            else:
                status.button("Cancel", on_click=job.cancel.set, key=cancel_key)
            return
        if not job.shown:
            job.shown = True
            st.rerun(scope="app")

    poll()
    return st.session_state.get(state_key)
