"""The one classifier on hand-written traces of each kind, worked out by hand."""

from __future__ import annotations

import json

import pytest

from profiling.traces import load_trace, summarize
from profiling.traces.breakdown import time_breakdown
from profiling.traces.classify import classify_events, op_type_kind


def _trace(events, threads=None, processes=None):
    meta = [{"ph": "M", "name": "thread_name", "pid": p, "tid": t, "args": {"name": n}}
            for (p, t), n in (threads or {}).items()]
    meta += [{"ph": "M", "name": "process_name", "pid": p, "args": {"name": n}}
             for p, n in (processes or {}).items()]
    return load_trace(json.dumps({"traceEvents": meta + events}).encode(), "t.json")


def X(name, ts, dur, tid=1, pid=1, cat="", **args):
    e = {"ph": "X", "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "cat": cat}
    if args:
        e["args"] = args
    return e


def kinds(trace):
    ev = trace.events
    return dict(zip(ev.name.astype(str), classify_events(ev), strict=False))


def test_tf_function_on_thread_pools_is_compute():
    """tf.function: the Python thread waits in KernelAndDeviceFunc::Run while tf_Compute runs
    the op and the Eigen pool runs its shards. The wait is not overhead in wall time."""
    t = _trace([
        X("nn_relu", 0, 100, tid=1),                            # Python wrapper: overhead
        X("KernelAndDeviceFunc::Run", 10, 80, tid=1),           # waits for the executor
        X("ExecutorState::Process", 15, 70, tid=2),
        X("Relu", 20, 60, tid=2, long_name="Relu:Relu"),        # the op
        X("ThreadpoolListener::Region", 25, 50, tid=3),          # Eigen shard of the op
    ], threads={(1, 1): "python", (1, 2): "tf_Compute/1", (1, 3): "tf_numa_-1_Eigen/2"})
    k = kinds(t)
    assert k["Relu"] == "compute" and k["ThreadpoolListener::Region"] == "compute"
    assert k["KernelAndDeviceFunc::Run"] == "other" and k["ExecutorState::Process"] == "other"
    b = time_breakdown(t.events)
    assert b["compute_us"] == 60                      # [20, 80) on any thread
    assert b["other_us"] == 40 and b["idle_us"] == 0  # wrapper and executor around it
    assert b["compute_comm_ratio"] is None


def test_xla_fusion_and_module_are_compute_and_wrappers_count_once():
    t = _trace([
        X("relu", 0, 100),                                                  # tf.function call
        X("__inference_relu_26", 10, 80, long_name="__inference_relu_26:__inference_relu_26"),
        X("CpuExecutable::ExecuteAsyncOnStream", 20, 60),
        X("broadcast_maximum_fusion", 25, 50, hlo_op="broadcast_maximum_fusion"),
    ])
    k = kinds(t)
    assert k["broadcast_maximum_fusion"] == "compute"
    assert k["CpuExecutable::ExecuteAsyncOnStream"] == "compute"  # inside the XLA call
    b = time_breakdown(t.events)
    assert b["compute_us"] == 80 and b["thread_time"]["compute_us"] == 80  # once, not 80+60+50
    assert b["other_us"] == 20


def test_collectives_and_transfers_are_communication_copies_are_memcpy():
    t = _trace([
        X("CollectiveReduceV2", 0, 40, tid=1, cat="", long_name="sgd/CollectiveReduceV2:"
                                                               "CollectiveReduceV2"),
        X("Loop", 5, 30, tid=1),                                  # the RING reducer's loop
        X("BaseCollectiveExecutor::ExecuteAsync", 50, 10, tid=1),
        X("Memcpy HtoD (Pageable -> Device)", 0, 10, tid=2, cat="gpu_memcpy"),
        X("MemcpyD2H", 20, 10, tid=2),
        X("_Send", 40, 5, tid=2, long_name="edge_1_x/_Send:_Send"),
        X("Memcpy DtoD (Device -> Device)", 60, 10, tid=2, cat="gpu_memcpy"),
        X("EagerCopyToDevice", 80, 10, tid=2),
        X("cudaMemcpyAsync", 90, 10, tid=2, cat="cuda_runtime"),
    ], threads={(1, 1): "collective_ops/1", (1, 2): "python"})
    k = kinds(t)
    for name in ("CollectiveReduceV2", "Loop", "BaseCollectiveExecutor::ExecuteAsync",
                 "Memcpy HtoD (Pageable -> Device)", "MemcpyD2H", "_Send"):
        assert k[name] == "collective", name
    assert k["Memcpy DtoD (Device -> Device)"] == "memcpy"
    assert k["EagerCopyToDevice"] == "memcpy"
    assert k["cudaMemcpyAsync"] == "other"  # a host runtime call, not the copy
    b = time_breakdown(t.events)
    # communication: [0, 45) ∪ [50, 60) = 55; memcpy [60, 70) ∪ [80, 90) = 20; other [90, 100)
    assert (b["collective_us"], b["memcpy_us"], b["other_us"], b["idle_us"]) == (55, 20, 10, 15)
    assert b["compute_comm_ratio"] == 0


def test_device_lanes_and_pytorch_ops():
    t = _trace([
        X("aten::conv2d", 0, 50, cat="cpu_op"),
        X("cudaLaunchKernel", 10, 5, cat="cuda_runtime"),     # inside the op: its time
        X("volta_sgemm", 20, 30, pid=2, tid=7),              # a GPU stream, no category
    ], processes={2: "/device:GPU:0"})
    k = kinds(t)
    assert k["aten::conv2d"] == "compute" and k["cudaLaunchKernel"] == "compute"
    assert k["volta_sgemm"] == "compute"


def test_op_type_kind_for_op_stats_rows():
    assert op_type_kind("CollectiveReduceV2") == "collective"
    assert op_type_kind("_HostRecv") == "collective"
    assert op_type_kind("_MklNativeFusedConv2D") == "compute"
    assert op_type_kind("Dataset") == "compute"


def test_same_answer_in_summary_and_breakdown():
    t = _trace([X("conv", 0, 10, cat="cpu_op"), X("ncclAllReduce", 5, 10, tid=2, cat="kernel")])
    s = summarize(t)
    b = time_breakdown(t.events)
    assert s["breakdown"] == {k: b[k] for k in s["breakdown"]}
    assert s["compute_comm_ratio"] == pytest.approx(10 / 10)
