"""Run page: choose what to measure, start a profile, watch it, read the first results."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import case_links, job_panel, noise_panel, resources, run_form, share, tables
from app.figure_cache import charts
from app.guard import one_line, page_guard
from app.run_again import FORM_STATE, RESEED  # the form's values beside the widgets' own
from app.run_form import SHAPE_PRESETS, build_spec, chosen_shapes, param_key, variant_entry
from app.run_job import RunJob, start_job
from profiling.presentation import noise_text
from profiling.spec import DTYPES, MODES, PASSES, RunSpec, SpecError
from profiling.storage.stored_json import decode

FIELD_WIDGET = {"sizes": "shapes"}
LANDING = ("ReLU Lab measures how fast each ReLU implementation runs on this machine, and why: "
           "choose variants, shapes and settings, press **Start**, and read each case's median "
           "time with its 95% confidence interval. **Compare** sets runs side by side, "
           "**Traces** shows where the time went, **Scenarios** tries the variants in a model.")  # spec fields shown under another widget


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
            key = param_key(variant.id, name)
            try:  # a link or a stored spec may hold 6 for an integer 6.0, or garbage
                value = cast(st.session_state.get(key, param.default))
            except (TypeError, ValueError):
                value = cast(param.default)
            if ((param.minimum is not None and value < param.minimum)
                    or (param.maximum is not None and value > param.maximum)):
                value = cast(param.default)  # the widget would refuse to draw
            st.session_state[key] = value
            values[name] = st.number_input(
                f"{variant.id}.{name}",
                min_value=None if param.minimum is None else cast(param.minimum),
                max_value=None if param.maximum is None else cast(param.maximum),
                step=1 if integer else None,
                format=None if integer else "%g",
                help=param.description or None,
                key=key,
            )
    return values


def form_options(registry: dict, devices: list[str], cpus: int) -> dict[str, list]:
    """The accepted values of each list widget."""
    threads = sorted({1, 2, 4, 8, 16, cpus} & set(range(1, 4 * cpus + 1)))
    return {"variants": list(registry), "shape_presets": list(SHAPE_PRESETS),
            "dtypes": list(DTYPES), "devices": list(devices), "threads": threads,
            "modes": list(MODES), "passes": list(PASSES)}


def restore_form(defaults: dict, options: dict[str, list]) -> None:
    """Put the form's values into the widgets' state before they are drawn: those kept in this
    session (another page was shown meanwhile), else the link's, else the defaults."""
    saved = st.session_state.get(FORM_STATE)
    reseed = st.session_state.pop(RESEED, False)
    if saved is None:
        saved = run_form.form_from_query(st.query_params.to_dict(), defaults, options)
    for key, value in saved.items():
        if key in options:  # a value this machine does not offer must not break the widget
            value = share.keep_known(list(value), options[key])
        if reseed or key not in st.session_state:
            st.session_state[key] = value


def remember_form(defaults: dict, registry: dict) -> None:
    """Keep the form's values for the next visit and in the URL (only what differs from the
    defaults, so a link stays short)."""
    keys = list(defaults) + [k for k in st.session_state if str(k).startswith(run_form.PARAM_PREFIX)]
    form = {key: st.session_state[key] for key in keys if key in st.session_state}
    st.session_state[FORM_STATE] = form
    param_defaults = {(v.id, name): p.default for v in registry.values()
                      for name, p in (v.params or {}).items()}
    share.write(**run_form.form_to_query(form, defaults, param_defaults))


def choose() -> tuple[dict, dict]:
    """Draw the form; returns the choices and a slot per spec field for its error."""
    registry = resources.variants()
    devices = resources.devices()
    cpus = resources.cpu_count()
    defaults = run_form.form_defaults(list(registry), devices, cpus)
    options = form_options(registry, devices, cpus)
    restore_form(defaults, options)
    slots: dict = {}
    left, right = st.columns(2, gap="large")
    with left:
        chosen = st.multiselect(
            "Variants", options["variants"], key="variants",
            format_func=lambda vid: f"{vid} — {registry[vid].name}",
        )
        slots["variants"] = st.empty()
        entries = []
        for vid in chosen:
            params = variant_params(registry[vid])
            param_defaults = {n: p.default for n, p in (registry[vid].params or {}).items()}
            entries.append(variant_entry(vid, params, param_defaults))
        presets = st.multiselect("Shapes", options["shape_presets"], key="shape_presets")
        custom = st.text_input("Custom shapes", placeholder="e.g. 1e6, 1000x1000, 32x32x16",
                               key="shape_custom",
                               help="Comma-separated element counts (1e6) or shapes (1000x1000).")
        slots["shapes"] = st.empty()
        dtypes = st.multiselect("Dtypes", options["dtypes"], key="dtypes")
        slots["dtypes"] = st.empty()
    with right:
        picked_devices = st.multiselect("Devices", options["devices"], key="devices")
        slots["devices"] = st.empty()
        threads = st.multiselect("Intra-op threads", options["threads"], key="threads")
        slots["threads"] = st.empty()
        modes = st.multiselect("Modes", options["modes"], key="modes")
        slots["modes"] = st.empty()
        passes = st.multiselect("Passes", options["passes"], key="passes")
        slots["passes"] = st.empty()
        repeats_col, time_col = st.columns(2)
        repeats = repeats_col.number_input("Repeats", step=1, key="repeats")
        slots["repeats"] = repeats_col.empty()
        min_time = time_col.number_input("Min time per repeat (s)", step=0.01, format="%g",
                                         key="min_time")
        slots["min_time"] = time_col.empty()
        trace_col, fusion_col = st.columns(2)
        trace = trace_col.checkbox("Capture a trace per case", key="trace")
        fusion = fusion_col.checkbox("Check conv/dense fusion", key="fusion")
        label = st.text_input("Run label", placeholder="optional, e.g. laptop baseline",
                              key="label")
    remember_form(defaults, registry)
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


def noise_warning(run: dict) -> None:
    """The measurement core's verdict on the machine during the run, in one line."""
    noise_panel.show(noise_text.notes(pd.DataFrame([run])), named=False)


def results(job: RunJob, spec) -> None:
    """Outcome of the run this session started, then its results (run_results)."""
    if job.error:
        st.error(f"The run failed: {job.error}")
        return
    run = resources.run(job.run_id)
    status = run.get("status", "complete")
    message = f"Run `{job.run_id}` {status}: {job.done}/{job.total} cases in {job.elapsed_s:.1f} s"
    (st.warning if status != "complete" else st.success)(message)
    share.write(run=job.run_id)  # a reload, or the link, shows this run again
    run_results(run, job.spec, spec)


def is_profile(spec_json: object, run_id: str) -> bool:
    """True when a run's stored spec is a Run page profile (not a scenario, model or capture)."""
    spec = decode(spec_json, "spec_json", run_id)
    if not spec or spec.get("kind", "profile") != "profile":
        return False
    try:
        RunSpec.from_json({k: v for k, v in spec.items() if k != "kind"})
    except (TypeError, ValueError, KeyError):
        return False
    return True


def last_run_id() -> str | None:
    """The run to show when this session started none: the URL's ``run`` when it is a stored
    profile, else the newest stored profile run; None without one."""
    runs = resources.list_runs()
    runs = runs[runs["status"] != "running"]
    wanted = share.read("run")
    for row in runs[runs["run_id"] == wanted].itertuples():
        if is_profile(row.spec_json, row.run_id):
            return row.run_id
    # newest first: the first profile ends the search
    return next((row.run_id for row in runs.itertuples()
                 if is_profile(row.spec_json, row.run_id)), None)


def restored_results(run_id: str, spec) -> None:
    """The results of a stored run, shown on a reload or in a new session."""
    run = resources.run(run_id)
    label = f" “{run['label']}”" if run.get("label") else ""
    st.info(f"Last run `{run_id}`{label} ({run.get('status', 'complete')}, started "
            f"{str(run.get('created_at', ''))[:19]}), from the store.", icon=":material/history:")
    run_results(run, decode(run.get("spec_json"), "spec_json", run_id), spec)


def run_results(run: dict, run_spec: object, spec) -> None:
    """A stored run's charts and one row per case linked to its trace; says when the form
    above no longer matches ``run_spec`` (the spec the run measured)."""
    run_id = run["run_id"]
    if spec is None or spec.to_json() != run_spec:
        label = f" “{run['label']}”" if run.get("label") else ""
        st.info(f"The results below belong to run `{run_id}`{label}, not to the form above "
                "(it has changed since). Start to measure the form's settings.",
                icon=":material/history:")
    noise_warning(run)
    st.page_link("views/compare.py", label="Open the full comparison", icon=":material/bar_chart:",
                 query_params={"runs": run_id})
    cases = resources.run_cases([run_id])
    failed = charts.failed_cases(cases)
    if not failed.empty:
        with st.expander(f"{len(failed)} cases skipped or failed"):
            tables.show(failed, key="run_failed")
    st.plotly_chart(charts.latency_vs_size(cases), key="run_latency")
    tables.show(charts.compare_styler(cases), key="run_table", hide_index=False)
    st.caption("Median µs per call; colour = ratio to the fastest row with the same shape and "
               "settings (dtype, device, threads, allocator, mode, pass). Below, every case with "
               "its trace (CI95 = half-width of the 95% confidence interval of the median):")
    case_links.show(cases, key="run_cases")


def render() -> None:
    st.title("Run a profile")
    st.markdown(LANDING)
    choices, slots = choose()
    spec, cases = validate(choices, slots)
    job: RunJob | None = st.session_state.get("job")
    running = job_panel.running("job")
    if cases is not None:
        skipped = [c for c in cases if c.skip_reason]
        note = f" ({len(skipped)} will be skipped: {skipped[0].skip_reason}…)" if skipped else ""
        st.caption(f"{len(cases)} cases{note}")
    if st.button("Start", type="primary", disabled=spec is None or running, key="start"):
        st.session_state["job"] = start_job(spec, resources.store(), total=len(cases))
        st.rerun()
    if running:
        job_panel.progress_panel("job", "Profiling", "cases", cancel_key="cancel")
    elif job is not None:
        job.shown = True
        results(job, spec)
    elif (restored := last_run_id()) is not None:
        restored_results(restored, spec)


with page_guard("The Run page"):
    render()
