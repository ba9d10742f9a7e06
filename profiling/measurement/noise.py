"""Was the machine quiet? What the OS tells about other work while a group of cases ran.

Around each group the runner takes a `Snapshot`: the load average, the machine's CPU time by
state from psutil.cpu_times() (steal included) and the CPU time of our own processes (the runner and
its worker). Other processes' CPU time is the machine's busy time minus ours. A group is noisy
when others used more than OTHER_CPU_LIMIT of the machine, or the hypervisor stole more than
STEAL_LIMIT; a run is noisy when any group was, or when any case's spread (IQR / median)
exceeds SPREAD_LIMIT, as pyperf warns past 10% ("the benchmark seems unstable").
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psutil

OTHER_CPU_LIMIT = 0.10  # of the machine's CPU capacity over the group's wall time
STEAL_LIMIT = 0.05
SPREAD_LIMIT = 0.10


@dataclass(frozen=True)
class Snapshot:
    wall_s: float
    load1: float
    busy_s: float  # all CPUs, every non-idle state (user..steal), seconds
    steal_s: float
    total_s: float
    own_cpu_s: float  # user + system of our processes and their children


def _machine_cpu_times() -> tuple[float, float, float]:
    """(busy, steal, total) CPU seconds of the whole machine since boot (psutil.cpu_times, all
    CPUs; steal where the OS reports it)."""
    try:
        t = psutil.cpu_times()
    except (OSError, RuntimeError):
        return 0.0, 0.0, 0.0
    fields = t._asdict()
    # Linux counts guest time inside user (and guest_nice inside nice): not twice
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    return total - idle, fields.get("steal", 0.0), total


def _cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds of these processes, their reaped children included (the worker converts
    each trace in a child process) and their live children's so far."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
            for child in proc.children(recursive=True):
                c = child.cpu_times()
                total += c.user + c.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def snapshot(own_pids: Sequence[int] = ()) -> Snapshot:
    """The machine's counters now; own_pids are our processes (this one is always included)."""
    busy, steal, total = _machine_cpu_times()
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = float("nan")
    return Snapshot(time.monotonic(), load1, busy, steal, total,
                    _cpu_seconds({os.getpid(), *own_pids}))


def between(before: Snapshot, after: Snapshot) -> dict:
    """What happened between two snapshots: wall_s, load1 (at the end), other_cpu_frac (other
    processes' CPU time / (wall x CPUs)), steal_frac, and noisy + reasons for this interval."""
    wall = max(after.wall_s - before.wall_s, 1e-9)
    cpus = psutil.cpu_count(logical=True) or 1
    busy = after.busy_s - before.busy_s
    total = max(after.total_s - before.total_s, 1e-9)
    other = max(0.0, busy - (after.own_cpu_s - before.own_cpu_s))
    other_frac = min(1.0, other / (wall * cpus))
    steal_frac = (after.steal_s - before.steal_s) / total
    reasons = []
    if other_frac > OTHER_CPU_LIMIT:
        reasons.append(f"other processes used {other_frac:.0%} of the CPUs")
    if steal_frac > STEAL_LIMIT:
        reasons.append(f"the hypervisor stole {steal_frac:.0%} of CPU time")
    return {"wall_s": wall, "load1": after.load1, "other_cpu_frac": other_frac,
            "steal_frac": steal_frac, "noisy": bool(reasons), "reasons": reasons}


def verdict(groups: Sequence[dict], spreads: Sequence[tuple[str, float]] = ()) -> dict:
    """The run's verdict from its groups (`between` dicts, each with a "group" name) and the
    (case description, IQR/median) of its ok cases:
    {"verdict": quiet|noisy|unknown, "reasons": [...], "groups": [...], "max_spread",
    "wide_cases" (how many spread over SPREAD_LIMIT)}."""
    reasons = [f"{g.get('group', 'group')}: {r}" for g in groups for r in g.get("reasons", [])]
    wide = [(name, s) for name, s in spreads if s > SPREAD_LIMIT]
    if wide:
        worst = max(wide, key=lambda t: t[1])
        reasons.append(f"{len(wide)} case(s) with spread (IQR/median) over {SPREAD_LIMIT:.0%}, "
                       f"widest {worst[1]:.0%} ({worst[0]})")
    state = "noisy" if reasons else "quiet"
    if not groups and not spreads:
        state = "unknown"
    return {"verdict": state, "reasons": reasons, "groups": list(groups),
            "max_spread": max((s for _, s in spreads), default=None), "wide_cases": len(wide)}
