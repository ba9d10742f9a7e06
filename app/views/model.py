"""Model page: your own Keras model's activations, and what each what-if rewrite would save.

The model loads in an isolated worker process (profiling.experiments.model_run), never in this
server: loading a .keras file can run code.
"""

from __future__ import annotations

import streamlit as st

from app import case_links, job_panel, resources, tables
from app.guard import page_guard
from app.run_job import JobCancelled, start_background
from profiling.presentation import model_summary, noise_text

APPLICATIONS = ("MobileNetV2", "MobileNetV3Small", "ResNet50", "EfficientNetB0", "ConvNeXtTiny",
                "DenseNet121", "NASNetMobile", "Xception")
REWRITES = ("fold_bn", "xla", "mixed_bfloat16", "swap:relu=custom_op", "swap:relu=maximum",
            "swap:relu6=clipped(clip=6)", "swap:gelu=tanh", "swap:silu=x_sigmoid")
UPLOAD, APPLICATION = "Upload a .keras file", "A Keras Applications architecture"


def _upload_path(upload) -> str:
    """The uploaded bytes in a file of the store's data dir, for the worker to open."""
    import hashlib
    from pathlib import Path

    from profiling.settings import data_dir

    data = upload.getvalue()
    folder = Path(data_dir()) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.keras"
    if not path.exists():
        path.write_bytes(data)
    return str(path)


def finished(job) -> None:
    if job is None or not job.finished:
        return
    if job.error:
        st.error(f"Model run failed: {job.error}")
    elif job.cancelled:
        st.warning("Cancelled: nothing was stored.")
    elif job.result is not None:
        st.session_state["model_result"] = job.result


def show_result(result: dict) -> None:
    spec = ", ".join(f"{s['name']} {'×'.join(map(str, s['shape']))}" for s in result["input_spec"])
    st.subheader(f"{result['model']} · {result['mode']} · {spec}")
    for line in model_summary.decision(result):
        st.success(line)
    line = noise_text.headline(result.get("noise") or {})
    if line:
        st.caption(line + " (rewrites whose CI overlaps the band are marked not resolved)")
    st.plotly_chart(model_summary.speedup_figure(result["rewrites"]), key="model_fig_speedup")
    tables.show(model_summary.rewrite_table(result["rewrites"]), key="model_rewrites")
    st.markdown(f"**Activation layers** ({len(result['activations'])}): time and share of the "
                "original's step, fused or not, and why")
    tables.show(model_summary.layer_table(result["activations"]), key="model_layers")
    if result.get("run_id"):
        run_id = result["run_id"]
        cases = resources.run_cases([run_id])
        traced = resources.traced_cases([run_id])
        links = [(row.variant, case_links.trace_url(run_id, row.case_id),
                  case_links.xprof_url(run_id, row.case_id),
                  case_links.perfetto_url(run_id, row.case_id))
                 for row in cases.itertuples() if row.case_id in traced]
        st.markdown(f"Stored as run `{run_id}`. Traces: " + " · ".join(
            f"[{name}]({trace}) ([XProf]({xprof}), [Perfetto]({perfetto}))"
            for name, trace, xprof, perfetto in links))
    for note in result.get("notes", []):
        st.caption(note)


def render() -> None:
    st.title("Model")
    st.caption("Profile your own Keras model: every activation layer, its share of the step, "
               "whether it ran fused and why not; then measure what each rewrite would save, "
               "interleaved against the original, with a 95% CI and the output difference.")
    st.warning("A .keras file can run code when it loads (custom layers, Lambdas). It loads in "
               "an isolated worker process with Keras' safe mode on, never in this server; "
               "still, upload only models you trust.")
    how = st.radio("Model", (UPLOAD, APPLICATION), horizontal=True, key="model_how")
    source = None
    if how == UPLOAD:
        upload = st.file_uploader("A .keras model file", type=["keras"], key="model_upload")
        if upload is not None:
            source = _upload_path(upload)
    else:
        name = st.selectbox("Architecture (random weights, no download)", APPLICATIONS,
                            key="model_app")
        source = f"keras.applications:{name}"
    cols = st.columns(3)
    shape = cols[0].text_input("Input shape per sample (blank: the model's)", "",
                               key="model_shape", placeholder="96,96,3")
    batch = cols[1].number_input("Batch", 1, 4096, 8, key="model_batch")
    mode = cols[2].radio("Step", ("inference", "train"), horizontal=True, key="model_mode")
    what_if = st.multiselect("What-if rewrites", REWRITES, default=["fold_bn", "xla"],
                             key="model_what_if")
    cols = st.columns(3)
    repeats = cols[0].number_input("Repeats", 3, 100, 7, key="model_repeats")
    min_time = cols[1].number_input("Seconds per repeat", 0.001, 5.0, 0.05, key="model_min_time")
    save = cols[2].checkbox("Save the run to the store", True, key="model_save")

    if st.button("Run", type="primary", key="model_run", disabled=source is None or
                 job_panel.running("model_job")):
        from profiling.cli.model import parse_shape
        from profiling.experiments.model_run import run_model
        from profiling.models.profile import ModelRequest

        st.session_state.pop("model_result", None)
        req = ModelRequest(source=source, input_shape=parse_shape(shape.strip() or None),
                           batch=int(batch), mode=mode, what_if=list(what_if),
                           repeats=int(repeats), min_time=float(min_time))
        store = resources.store() if save else None

        def work(job):  # a background thread: no st.* here
            from profiling.execution.runner import Cancelled

            def progress(text: str) -> None:
                job.current = text

            try:
                return run_model(req, progress, cancel=job.cancel, store=store)
            except Cancelled:
                raise JobCancelled from None

        st.session_state["model_job"] = start_background(work, total=1, name="relu-lab-model")
        st.rerun()
    finished(job_panel.progress_panel("model_job", "Profiling the model", "run", "model_cancel"))
    result = st.session_state.get("model_result")
    if result:
        with page_guard("Drawing the model run"):
            show_result(result)


with page_guard("The Model page"):
    render()
