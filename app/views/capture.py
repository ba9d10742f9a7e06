"""Capture page: profile running TensorFlow processes that called
tf.profiler.experimental.server.start(port), one or several workers at once."""

from __future__ import annotations

import streamlit as st  # noqa: E402

from app import tables  # noqa: E402
from app.guard import page_guard  # noqa: E402
from profiling import settings  # noqa: E402
from profiling.presentation import scenario_charts, units  # noqa: E402


def render() -> None:
    st.title("Remote capture")
    st.caption("Attach to running TensorFlow processes that called "
               "`tf.profiler.experimental.server.start(port)` and capture a trace from each; "
               "saved traces open on the Traces page like local ones.")

    addresses = st.text_input("Addresses (comma-separated)", "grpc://127.0.0.1:6009",
                              key="cap_addresses")
    cols = st.columns(3)
    duration_ms = cols[0].number_input("Duration (ms)", 1, 600_000, 1000, key="cap_duration")
    timeout = cols[1].number_input("Timeout past the duration (s)", 1, 1800,
                                   min(1800, int(settings.capture_timeout_s())),
                                   key="cap_timeout")
    save = cols[2].checkbox("Save to the store", True, key="cap_save")

    if st.button("Capture", type="primary", key="cap_run"):
        st.session_state.pop("cap_result", None)
        with page_guard("Capture"), st.spinner("Capturing…"):
            from app import resources
            from profiling.experiments.capture import capture

            st.session_state["cap_result"] = capture(
                addresses, int(duration_ms), timeout_s=float(timeout) + int(duration_ms) / 1000,
                store=resources.store() if save else None,
            )

    result = st.session_state.get("cap_result")
    if result is not None:
        with page_guard("Drawing the capture"):
            if result.run_id:
                st.success(f"Saved as run {result.run_id}; open it on the Traces page.")
            for row in result.traces[result.traces["status"] != "ok"].itertuples():
                st.warning(f"{row.address}: {row.reason}")
            st.plotly_chart(scenario_charts.capture_breakdown_figure(result.traces),
                            key="cap_fig_breakdown")
            st.plotly_chart(scenario_charts.top_ops_figure(result.top_ops), key="cap_fig_top")
            tables.show(result.traces, key="cap_traces",
                        style=lambda page: units.readable(page, unit="µs"))


with page_guard("The Capture page"):
    render()
