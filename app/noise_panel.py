"""The noise of the runs on a page, said once: a short line per noisy run, the details behind
one expander. Used by the Run and Compare pages."""

from __future__ import annotations

import streamlit as st

from profiling.presentation.noise_text import SURVIVES, NoiseNote


def show(notes: list[NoiseNote], named: bool = True) -> None:
    """One warning line per noisy run (prefixed with its name when ``named``), then one
    collapsed expander with every reason; nothing when no run was noisy."""
    if not notes:
        return
    for note in notes:
        st.warning(f"Run {note.run} · {note.line}" if named else note.line[:1].upper() + note.line[1:],
                   icon=":material/warning:")
    with st.expander("Noise details"):
        for note in notes:
            reasons = "; ".join(note.reasons) or "no reason recorded"
            st.markdown(f"- **{note.run}**: {reasons}")
        st.caption(SURVIVES)
