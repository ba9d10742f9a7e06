"""Run page: choose what to measure, start a profile, watch it, read the first results."""

from __future__ import annotations

import streamlit as st

from app import resources
from app.guard import one_line, page_guard
from app.run_form import SHAPE_PRESETS, build_spec, chosen_shapes, variant_entry
from app.run_job import RunJob, start_job
from profiling import charts
from profiling.spec import DTYPES, MODES, PASSES, SpecError

DEFAULT_VARIANTS = ("nn_relu", "where", "maximum")
FIELD_WIDGET = {"sizes": "shapes"}  # spec fields shown under another widget
POLL_S = 0.5


def variant_params(variant) -> dict:
    """Number inputs for a variant's parameters (default/min/max from Variant.params)."""
    values = {}
    params = getattr(variant, "params", {}) or {}
    if not params:
        return values
    with st.expander(f"Parameters of {variant.id}", expanded=False):
        for name, param in params.items():
            integer = bool(getattr(param, "integer", False))
            cast = int if integer else float
            values[name] = st.number_input(
                f"{variant.id}.{name}",
                value=cast(param.default),
                min_value=None if param.minimum is None else cast(param.minimum),
                max_value=None if param.maximum is None else cast(param.maximum),
                step=1 if integer else None,
                format=None if integer else "%g",
                help=param.description or None,
                key=f"param_{variant.id}_{name}",
            )
    return values


def choose() -> tuple[dict, dict]:
    """Draw the form; returns the choices and a slot per spec field for its error."""
    registry = resources.variants()
    devices = resources.devices()
    slots: dict = {}
    left, right = st.columns(2, gap="large")
    with left:
        chosen = st.multiselect(
            "Variants", list(registry), default=[v for v in DEFAULT_VARIANTS if v in registry],
            format_func=lambda vid: f"{vid} — {registry[vid].name}", key="variants",
        )
        slots["variants"] = st.empty()
        entries = []
        for vid in chosen:
            params = variant_params(registry[vid])
            defaults = {n: p.default for n, p in (registry[vid].params or {}).items()}
            entries.append(variant_entry(vid, params, defaults))
        presets = st.multiselect("Shapes", list(SHAPE_PRESETS), default=["1000", "100000"],
                                 key="shape_presets")
        custom = st.text_input("Custom shapes", placeholder="e.g. 1e6, 1000x1000, 32x32x16",
                               key="shape_custom",
                               help="Comma-separated element counts (1e6) or shapes (1000x1000).")
        slots["shapes"] = st.empty()
        dtypes = st.multiselect("Dtypes", list(DTYPES), default=["float32"], key="dtypes")
        slots["dtypes"] = st.empty()
    with right:
        picked_devices = st.multiselect("Devices", devices, default=devices[:1], key="devices")
        slots["devices"] = st.empty()
        cpus = resources.cpu_count()
        thread_options = sorted({1, 2, 4, 8, 16, cpus} & set(range(1, 4 * cpus + 1)))
        threads = st.multiselect("Intra-op threads", thread_options, default=[cpus],
                                 key="threads")
        slots["threads"] = st.empty()
        modes = st.multiselect("Modes", list(MODES), default=["eager", "function"], key="modes")
        slots["modes"] = st.empty()
        passes = st.multiselect("Passes", list(PASSES), default=["forward"], key="passes")
        slots["passes"] = st.empty()
        repeats_col, time_col = st.columns(2)
        repeats = repeats_col.number_input("Repeats", value=7, step=1, key="repeats")
        slots["repeats"] = repeats_col.empty()
        min_time = time_col.number_input("Min time per repeat (s)", value=0.05, step=0.01,
                                         format="%g", key="min_time")
        slots["min_time"] = time_col.empty()
        trace_col, fusion_col = st.columns(2)
        trace = trace_col.checkbox("Capture a trace per case", value=True, key="trace")
        fusion = fusion_col.checkbox("Check conv/dense fusion", value=False, key="fusion")
        label = st.text_input("Run label", placeholder="optional, e.g. laptop baseline",
                              key="label")
    choices = dict(variants=entries, dtypes=dtypes, devices=picked_devices, threads=threads,
                   modes=modes, passes=passes, repeats=repeats, min_time=min_time, trace=trace,
                   fusion=fusion, label=label, presets=presets, custom=custom)
    return choices, slots


def validate(choices: dict, slots: dict):
    """(spec, cases) or (None, None) with the reason shown next to the widget at fault."""
    try:
        choices = dict(choices, shapes=chosen_shapes(choices["presets"], choices["custom"]))
        spec = build_spec(choices)
        return spec, spec.validate()
    except SpecError as error:
        slot = slots.get(FIELD_WIDGET.get(error.field, error.field))
        (slot.error if slot is not None else st.error)(one_line(error))
    except (TypeError, ValueError) as error:
        st.error(one_line(error))
    return None, None


def progress_panel() -> None:
    """Live progress while the background run goes; one full rerun when it ends."""
    job: RunJob | None = st.session_state.get("job")
    if job is None:
        return
    if not job.finished:
        # Not a `with` block: leaving one marks the status complete.
        status = st.status(f"Profiling… {job.done}/{job.total} cases", state="running",
                           expanded=True)
        status.progress(job.fraction, text=f"{job.current} ({job.elapsed_s:.0f} s)")
        if job.cancel.is_set():
            status.caption("Cancelling after the current case…")
        else:
            status.button("Cancel", on_click=job.cancel.set, key="cancel")
        return
    if not job.shown:
        job.shown = True
        st.rerun(scope="app")


def results(job: RunJob) -> None:
    """Outcome of the last run and its first charts."""
    if job.error:
        st.error(f"The run failed: {job.error}")
        return
    run = resources.store().run(job.run_id)
    status = run.get("status", "complete")
    message = f"Run `{job.run_id}` {status}: {job.done}/{job.total} cases in {job.elapsed_s:.1f} s"
    (st.warning if status != "complete" else st.success)(message)
    st.page_link("views/compare.py", label="Open the full comparison", icon=":material/bar_chart:",
                 query_params={"runs": job.run_id})
    cases = resources.run_cases([job.run_id])
    failed = charts.failed_cases(cases)
    if not failed.empty:
        with st.expander(f"{len(failed)} cases skipped or failed"):
            st.dataframe(failed, hide_index=True)
    st.plotly_chart(charts.latency_vs_size(cases), key="run_latency")
    st.dataframe(charts.compare_styler(cases), key="run_table")


def render() -> None:
    st.title("Run a profile")
    choices, slots = choose()
    spec, cases = validate(choices, slots)
    job: RunJob | None = st.session_state.get("job")
    running = job is not None and not job.finished
    if cases is not None:
        skipped = [c for c in cases if c.skip_reason]
        note = f" ({len(skipped)} will be skipped: {skipped[0].skip_reason}…)" if skipped else ""
        st.caption(f"{len(cases)} cases{note}")
    if st.button("Start", type="primary", disabled=spec is None or running, key="start"):
        st.session_state["job"] = start_job(spec, resources.store(), total=len(cases))
        st.rerun()
    if running:
        st.fragment(run_every=POLL_S)(progress_panel)()
    elif job is not None:
        job.shown = True
        results(job)


with page_guard("The Run page"):
    render()
