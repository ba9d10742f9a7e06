"""Scenarios page: a ResNet block stack or Wide & Deep model with each ReLU variant; or its
training step under MirroredStrategy / MultiWorkerMirroredStrategy. Widgets, backend, charts."""

from __future__ import annotations

import streamlit as st  # noqa: E402

from app import job_panel, tables  # noqa: E402
from app.guard import page_guard  # noqa: E402
from app.run_job import start_background  # noqa: E402
from profiling.presentation import scenario_charts, units  # noqa: E402

SINGLE, MIRRORED, MULTIWORKER = ("Variants, one process", "MirroredStrategy",
                                 "MultiWorkerMirroredStrategy (loopback)")
GUIDE = "Guide scenario"
GUIDE_KINDS = {"mixed_precision": "Mixed-precision training", "qat": "INT8: QAT and int8 path",
               "batch_sweep": "Batch-size sweep", "sparsity": "Sparsity, storage, dead units"}


def finished_job(job) -> None:
    """Once the background run is over: its result on the page, or why there is none."""
    if job is None or not job.finished:
        return
    if job.error:
        st.error(f"Scenario run failed: {job.error}")
    elif job.cancelled:
        st.warning("Cancelled: nothing was stored.")
    elif job.result is not None:
        st.session_state["sc_result"] = job.result


def render() -> None:
    import relu_impls  # imports TensorFlow; a failure is one line under the guard

    st.title("Scenarios")
    st.caption("Small Keras models with the activation swapped: step time (median, 95% CI), which "
               "activations Grappler fuses into the conv/matmul (read from a profiler trace), and "
               "the loss each variant reaches on the same synthetic task from the same weights.")

    mode = st.radio("What to run", (SINGLE, GUIDE, MIRRORED, MULTIWORKER), horizontal=True,
                    key="sc_mode")
    if mode == GUIDE:
        kind = st.selectbox("Guide scenario", list(GUIDE_KINDS), format_func=GUIDE_KINDS.get,
                            key="sc_kind")
    model = st.selectbox("Model", ("resnet", "wide_deep"), key="sc_model",
                         format_func={"resnet": "ResNet block stack",
                                      "wide_deep": "Wide & Deep"}.get)
    ids = list(relu_impls.VARIANTS)
    if mode in (SINGLE, GUIDE):
        variants = st.multiselect("Variants", ids, default=["nn_relu", "maximum", "where"],
                                  key="sc_variants")
    else:
        variants = [st.selectbox("Variant", ids, index=ids.index("nn_relu"), key="sc_variant")]
    cols = st.columns(4)
    batch = cols[0].number_input("Batch", 1, 1024, 16, key="sc_batch")
    if model == "resnet":
        image_size = cols[1].number_input("Image size", 4, 128, 8, key="sc_image")
        channels = cols[2].number_input("Channels", 1, 256, 8, key="sc_channels")
        blocks = cols[3].number_input("Blocks", 1, 8, 1, key="sc_blocks")
    else:
        image_size, channels, blocks = 8, 8, 1
        hidden = st.text_input("Deep tower widths", "64,32", key="sc_hidden")
    guide_block = mode in (SINGLE, GUIDE) and model == "resnet" and st.checkbox(
        "The guide's block (conv → BatchNorm → activation)", False, key="sc_guide_block")
    if mode == GUIDE:
        if kind == "mixed_precision":
            from profiling.experiments.guide_scenarios import POLICIES

            policies = st.multiselect("Policies", POLICIES, default=list(POLICIES),
                                      key="sc_policies")
        if kind == "batch_sweep":
            batches = st.text_input("Batch sizes", "8,16,32,64,128,256,512", key="sc_batches")
    cols = st.columns(4)
    if mode in (SINGLE, GUIDE):
        repeats = cols[0].number_input("Repeats", 1, 100, 5, key="sc_repeats")
        train_steps = cols[1].number_input("Training steps (loss check)", 1, 1000, 20,
                                           key="sc_train_steps")
        trace = cols[2].checkbox("Read fusion from a trace", True, key="sc_trace")
    else:
        steps = cols[0].number_input("Timed steps", 1, 100, 5, key="sc_steps")
        timeout = cols[1].number_input("Timeout (s)", 10, 1800, 180, key="sc_timeout")
        if mode == MIRRORED:
            devices = cols[2].text_input("Devices (blank: all GPUs, else logical CPUs)", "",
                                         key="sc_devices")
            logical_cpus = cols[3].number_input("Logical CPUs", 1, 8, 2, key="sc_logical_cpus")
        else:
            workers = cols[2].number_input("Workers", 2, 8, 2, key="sc_workers")
            communication = cols[3].selectbox("Communication", ("AUTO", "RING"), key="sc_comm")
    save = st.checkbox("Save the run to the store", True, key="sc_save")

    if st.button("Run", type="primary", key="sc_run", disabled=job_panel.running("sc_job")):
        st.session_state.pop("sc_result", None)
        from app import resources

        store = resources.store() if save else None

        def work(job):  # in a background thread: no st.* calls here
            if mode == SINGLE:
                from profiling.experiments.scenarios import (
                    ScenarioConfig,
                    parse_hidden,
                    run_scenario,
                )

                if not variants:
                    raise ValueError("choose at least one variant")
                kwargs = {"hidden": parse_hidden(hidden)} if model == "wide_deep" else {}
                cfg = ScenarioConfig(model=model, variants=variants, batch=int(batch),
                                     image_size=int(image_size), channels=int(channels),
                                     blocks=int(blocks), repeats=int(repeats),
                                     train_steps=int(train_steps), trace=trace,
                                     guide_block=bool(guide_block), **kwargs)
                return "single", run_scenario(cfg, store=store, on_progress=job.step)
            elif mode == GUIDE:
                from profiling.experiments.guide_scenarios import (
                    GuideConfig,
                    parse_int_list,
                    run_guide,
                )
                from profiling.experiments.scenarios import ScenarioConfig, parse_hidden

                if not variants:
                    raise ValueError("choose at least one variant")
                kwargs = {"hidden": parse_hidden(hidden)} if model == "wide_deep" else {}
                base = ScenarioConfig(model=model, variants=variants, batch=int(batch),
                                      image_size=int(image_size), channels=int(channels),
                                      blocks=int(blocks), repeats=int(repeats),
                                      train_steps=int(train_steps), trace=trace,
                                      guide_block=bool(guide_block), **kwargs)
                extra = {}
                if kind == "mixed_precision":
                    extra["policies"] = tuple(policies)
                if kind == "batch_sweep":
                    extra["batches"] = parse_int_list("batch sizes", batches)
                return "guide", run_guide(
                    GuideConfig(kind=kind, base=base, int8_numel=1 << 18, **extra),
                    store=store, on_progress=job.step)
            else:
                from profiling.experiments.distributed import DistributedConfig, run_distributed

                cfg = DistributedConfig(
                    strategy="mirrored" if mode == MIRRORED else "multiworker", model=model,
                    variant=variants[0], global_batch=int(batch), image_size=int(image_size),
                    channels=int(channels), blocks=int(blocks), steps=int(steps),
                    timeout_s=float(timeout),
                    devices=([d.strip() for d in devices.split(",") if d.strip()] or None)
                    if mode == MIRRORED else None,
                    logical_cpus=int(logical_cpus) if mode == MIRRORED else 2,
                    workers=int(workers) if mode == MULTIWORKER else 2,
                    communication=communication if mode == MULTIWORKER else "AUTO",
                )
                return "distributed", run_distributed(cfg, store=store)

        st.session_state["sc_job"] = start_background(
            work, total=len(variants) if mode == SINGLE else 1, name="relu-lab-scenario")
        st.rerun()
    finished_job(job_panel.progress_panel("sc_job", "Running", "variants", "sc_cancel"))

    kind_result = st.session_state.get("sc_result")
    if kind_result:
        kind, result = kind_result
        with page_guard("Drawing the result"):
            if result.run_id:
                st.success(f"Saved as run {result.run_id} (its traces are on the Traces page).")
            if kind == "single":
                summary = result.summary
                st.plotly_chart(scenario_charts.step_time_figure(summary), key="sc_fig_steps")
                st.plotly_chart(scenario_charts.fusion_figure(result.fusion), key="sc_fig_fusion")
                st.plotly_chart(scenario_charts.loss_figure(result.losses), key="sc_fig_loss")
                tables.show(scenario_charts.summary_table(summary), key="sc_summary",
                            style=lambda page: units.readable(page, unit="ms"))
                skipped = summary[summary["status"] != "ok"]
                for row in skipped.itertuples():
                    st.info(f"{row.label}: {row.status} — {row.reason}")
            elif kind == "guide":
                figures = scenario_charts.guide_figures(result.kind, result.summary,
                                                        result.layers, result.extra)
                for i, figure in enumerate(figures):
                    st.plotly_chart(figure, key=f"sc_fig_guide_{i}")
                tables.show(result.shown(), key="sc_guide_table")
                if len(result.layers):
                    st.caption("Per activation layer: exact zeros, bytes dense vs sparse, units "
                               "that output 0 for every training sample after training")
                    tables.show(result.layers, key="sc_layers")
                if len(result.extra.get("half_ops", [])):
                    st.caption("Ops that ran in half precision (trace op, graph dtype)")
                    tables.show(result.extra["half_ops"], key="sc_half_ops")
                for row in result.summary[result.summary["status"] != "ok"].itertuples():
                    st.info(f"{row.label} ({row.mode}): {row.status} — {row.reason}")
            else:
                st.plotly_chart(scenario_charts.compute_comm_figure(result.workers),
                                key="sc_fig_comm")
                tables.show(result.workers, key="sc_workers",
                            style=lambda page: units.readable(page, unit="ms"))
                collectives = result.op_stats[result.op_stats["category"] == "collective"]
                if len(collectives):
                    tables.show(collectives, key="sc_collectives", style=units.readable)


with page_guard("The Scenarios page"):
    render()
