"""Pool-thread time given to the op it was done for.

On CPU traces TF's intra-op (Eigen) pool threads record `ThreadpoolListener::Region` for each
task they run, with the task's own events nested under it. That work is done *for* the op that
is running on a dispatching thread at the time (the Python thread in eager mode, an inter-op
`tf_Compute` thread under `tf.function`), so the op's cost is its own self time plus that work.

The rule (profiling/README.md, "What the breakdown means"):

- **pool work**: an event on an intra-op pool thread (a thread whose name matches
  classify.POOL_THREAD_RE: TF names them `tf_numa_<n>_Eigen/<id>`) that is a
  `ThreadpoolListener::Region` or nested inside one;
- **candidates**: op events (classify kind other than "other") on the other threads of the same
  process; on each such thread, at each instant, the innermost op open then;
- each stretch of a pool event's self time goes to the candidates covering it; where candidates
  on several threads cover it, its covered time is split in proportion to each one's overlap
  with it (`split_count` counts such pool events); the part no candidate covers stays
  unattributed, reported as one row named UNATTRIBUTED.

All vectorized: a few sorts and searchsorted passes per dispatching thread, no per-event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from profiling.traces.classify import KINDS, POOL_THREAD_RE, category_codes, classify_events
from profiling.traces.model import nesting

REGION = "ThreadpoolListener::Region"
UNATTRIBUTED = "(pool work, no dispatching op)"
CPU_TIME_LABEL = "CPU time = own + pool work"
SELF_TIME_LABEL = "self time"
PAIR_BLOCK = 1 << 18  # intervals handled at a time where each needs several temporaries


@dataclass
class Attribution:
    """Pool work given to ops, per event of the frame it was computed from (µs).

    cpu_us: see cpu_us(); pool_us: all pool work's self time; unattributed_us: the part of it
    no op covered (also the sum of cpu_us over pool-work events); split_count: pool events
    whose time was split between ops on different dispatching threads; is_pool_work: True for
    pool-work events; attributed_us: pool work given to each op event (0 elsewhere).
    """

    cpu_us: np.ndarray
    pool_us: float
    unattributed_us: float
    split_count: int
    is_pool_work: np.ndarray
    attributed_us: np.ndarray

    @property
    def has_pool_work(self) -> bool:
        """True when the trace has pool work, so CPU time and self time differ."""
        return bool(self.is_pool_work.any())

    @property
    def time_label(self) -> str:
        """Which figure an op table built from this shows."""
        return CPU_TIME_LABEL if self.has_pool_work else SELF_TIME_LABEL


def pool_threads(events: pd.DataFrame) -> np.ndarray:
    """True per event on an intra-op pool thread (by thread name)."""
    codes, names = category_codes(events["thread"], None)
    table = np.asarray([bool(POOL_THREAD_RE.search(n)) for n in names] or [False], dtype=bool)
    return table[codes] & (codes >= 0) if names else np.zeros(len(events), dtype=bool)


def pool_work(events: pd.DataFrame) -> np.ndarray:
    """True per event that is pool work: a Region on a pool thread, or nested inside one."""
    on_pool = pool_threads(events)
    if not on_pool.any():
        return on_pool
    under = on_pool & (events["name"] == REGION).to_numpy()
    parent, depth = events["parent"].to_numpy(), events["depth"].to_numpy()
    order = np.argsort(depth, kind="stable")
    levels = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
    for d in range(1, len(levels) - 1):
        rows = order[levels[d]:levels[d + 1]]
        rows = rows[on_pool[rows] & (parent[rows] >= 0)]
        under[rows] |= under[parent[rows]]
    return under


def _in_lane_order(lane: np.ndarray, ts: np.ndarray, dur: np.ndarray) -> bool:
    """True when each lane's events are contiguous and sorted by (ts, -dur), as in a
    Trace.events frame (or a subset of one): nesting needs no sort then."""
    step = np.diff(lane) != 0
    if int(step.sum()) + 1 != len(np.unique(lane)):
        return False
    same = ~step
    later, tie = np.diff(ts), np.diff(dur)
    return bool(((later[same] > 0) | ((later[same] == 0) & (tie[same] <= 0))).all())


def self_pieces(lane: np.ndarray, ts: np.ndarray, dur: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, start, end) of each event's self time as intervals: its span minus its
    children's (nesting among the given events only, per lane). Within a lane the pieces are
    disjoint, so at each instant one owner, the innermost event open then; owner indexes the
    inputs. In no particular order."""
    n = len(ts)
    if n == 0:
        return np.array([], dtype=np.int64), np.array([]), np.array([])
    order = None if _in_lane_order(lane, ts, dur) else np.lexsort((-dur, ts, lane))
    if order is not None:
        lane, ts, dur = lane[order], ts[order], dur[order]
    _, parent, _ = nesting(lane, ts, dur)
    end = ts + dur
    row_type = np.int32 if n < 2**31 else np.int64
    kids = np.flatnonzero(parent >= 0).astype(row_type)
    p = parent[kids].astype(row_type)
    by_parent = np.argsort(p, kind="stable")  # kids stay in time order within each parent
    kids, p = kids[by_parent], p[by_parent]
    kid_start = np.clip(ts[kids], ts[p], end[p])
    kid_end = np.clip(end[kids], kid_start, end[p])
    boundary = p[1:] != p[:-1]
    first = np.concatenate([[True], boundary]) if len(p) else np.array([], dtype=bool)
    last = np.concatenate([boundary, [True]]) if len(p) else np.array([], dtype=bool)
    until_first_kid = end.copy()
    until_first_kid[p[first]] = kid_start[first]
    # own start to the first kid (or own end); between kids; last kid to own end; each part's
    # empty pieces dropped as it is written, so no unfiltered concatenation is ever held
    between = ~last[:-1]
    parts = [(lambda: np.arange(n, dtype=row_type), lambda: ts, lambda: until_first_kid),
             (lambda: p[:-1][between], lambda: kid_end[:-1][between],
              lambda: kid_start[1:][between]),
             (lambda: p[last], lambda: kid_end[last], lambda: end[p[last]])]
    keeps = [np.flatnonzero(stop() > start()) for _, start, stop in parts]
    m = sum(len(k) for k in keeps)
    owner, start, stop = np.empty(m, dtype=row_type), np.empty(m), np.empty(m)
    at = 0
    for (get_owner, get_start, get_stop), keep in zip(parts, keeps, strict=True):
        owner[at:at + len(keep)] = get_owner()[keep]
        start[at:at + len(keep)] = get_start()[keep]
        stop[at:at + len(keep)] = get_stop()[keep]
        at += len(keep)
    return (owner if order is None else order[owner]), start, stop


def _union_covered(starts: np.ndarray, ends: np.ndarray, a: np.ndarray, b: np.ndarray
                   ) -> np.ndarray:
    """Length of [a, b) covered by the union of intervals [starts, ends), per query."""
    out = np.zeros(len(a))
    if len(starts) == 0:
        return out
    o = np.argsort(starts, kind="stable")
    s, e = starts[o], np.maximum.accumulate(ends[o])
    del o
    new = np.concatenate([[True], s[1:] > e[:-1]])
    group_end = np.concatenate([np.flatnonzero(new)[1:] - 1, [len(s) - 1]])
    u_s, u_e = s[new], e[group_end]
    del s, e, new, group_end
    length = u_e - u_s
    before = np.concatenate([[0.0], np.cumsum(length)])

    def covered_until(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(u_s, t, side="right") - 1
        inside = np.clip(t - u_s[np.maximum(k, 0)], 0.0, length[np.maximum(k, 0)])
        return np.where(k >= 0, before[np.maximum(k, 0)] + inside, 0.0)

    for at in range(0, len(a), PAIR_BLOCK):  # queries in blocks: bounded temporaries
        block = slice(at, at + PAIR_BLOCK)
        out[block] = covered_until(b[block]) - covered_until(a[block])
    return out


def _lanes(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """(pid code, lane = pid code * width + tid code + 1, width) per event, int32 where the
    lanes fit (a missing tid, code -1, is lane 0 of its pid)."""
    pid = category_codes(events["pid"], None)[0]
    tid = category_codes(events["tid"], None)[0]
    width = int(tid.max()) + 2 if len(tid) else 1
    dtype = np.int32 if (int(pid.max()) + 1) * width < 2**31 else np.int64
    lane = pid.astype(dtype) * width
    lane += tid
    lane += 1
    return pid, lane, width


def _block_pairs(pieces: np.ndarray, mine: np.ndarray, starts: np.ndarray, reach: np.ndarray,
                 c_owner: np.ndarray, c_start: np.ndarray, c_end: np.ndarray,
                 p_start: np.ndarray, p_end: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(piece, op row, overlap µs) of the given pool pieces against one dispatching thread's
    candidate pieces `mine` (sorted by start: `starts`, `reach` = running max of their ends)."""
    lo = np.searchsorted(reach, p_start[pieces], side="right")
    count = np.searchsorted(starts, p_end[pieces], side="left")
    count -= lo
    np.maximum(count, 0, out=count)
    piece = np.repeat(pieces, count)
    cand = np.repeat(lo - (np.cumsum(count) - count), count)
    del lo, count
    cand += np.arange(len(cand))
    cand = mine[cand]
    overlap = np.minimum(p_end[piece], c_end[cand])
    overlap -= np.maximum(p_start[piece], c_start[cand])
    ok = np.flatnonzero(overlap > 0)
    return piece[ok], c_owner[cand[ok]], overlap[ok]


def _pairs(c_owner: np.ndarray, c_lane: np.ndarray, c_start: np.ndarray, c_end: np.ndarray,
           p_pid: np.ndarray, p_start: np.ndarray, p_end: np.ndarray, p_owner: np.ndarray,
           n_pool: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(piece, op row, overlap µs) of each pool piece and each candidate piece overlapping it
    on a dispatching thread of the same process; and how many pool events overlap candidates
    on two or more dispatching threads (split_count)."""
    pair_piece, pair_op, pair_overlap = [], [], []
    lanes_hit = np.zeros(n_pool, dtype=np.int32)  # per pool event
    hit_here = np.zeros(n_pool, dtype=bool)
    row_type = c_owner.dtype
    by_lane = np.argsort(c_lane, kind="stable").astype(row_type)
    lane_bounds = np.flatnonzero(np.diff(c_lane[by_lane])) + 1
    for mine in np.split(by_lane, lane_bounds) if len(by_lane) else []:  # per dispatching thread
        mine = mine[np.argsort(c_start[mine], kind="stable")]
        starts = c_start[mine]
        # running max: robust to pieces that overlap (improperly nested events)
        reach = np.maximum.accumulate(c_end[mine])
        hit_here[:] = False
        pieces = np.flatnonzero(p_pid == c_lane[mine[0]] // width).astype(row_type)
        for at in range(0, len(pieces), PAIR_BLOCK):  # bounds the per-pair temporaries
            piece, op, overlap = _block_pairs(pieces[at:at + PAIR_BLOCK], mine, starts, reach,
                                              c_owner, c_start, c_end, p_start, p_end)
            hit_here[p_owner[piece]] = True
            pair_piece.append(piece)
            pair_op.append(op)
            pair_overlap.append(overlap)
        lanes_hit += hit_here
        del starts, reach, pieces
    split = int((lanes_hit >= 2).sum())
    if len(pair_piece) == 1:  # one block: no concatenated copy
        return pair_piece[0], pair_op[0], pair_overlap[0], split
    if not pair_piece:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([]), split
    return (np.concatenate(pair_piece), np.concatenate(pair_op),
            np.concatenate(pair_overlap), split)


def attribute(events: pd.DataFrame, kind: pd.Series | None = None) -> Attribution:
    """Pool work attributed to the ops it was done for (module docstring has the rule).
    ``kind``: classify_events(events), when the caller has it already. ``events`` is a whole
    Trace.events frame (its parent column indexes rows)."""
    # Temporaries are freed as soon as they are used: on a big CPU trace most events are pool
    # work, and every per-event array here costs 4-8 bytes an event.
    n = len(events)
    self_us = events["self_us"].to_numpy(float) if n else np.array([])
    if n == 0:
        return Attribution(self_us.copy(), 0.0, 0.0, 0, np.zeros(0, bool), np.zeros(0))
    is_pool = pool_work(events)
    if not is_pool.any():
        return Attribution(self_us.copy(), 0.0, 0.0, 0, is_pool, np.zeros(n))
    kind = classify_events(events) if kind is None else kind
    pid, lane, width = _lanes(events)
    ts, dur = events["ts_us"].to_numpy(float), events["dur_us"].to_numpy(float)
    row_type = np.int32 if n < 2**31 else np.int64

    pool_rows = np.flatnonzero(is_pool).astype(row_type)
    p_owner, p_start, p_end = self_pieces(lane[pool_rows], ts[pool_rows], dur[pool_rows])
    p_owner = p_owner.astype(row_type)
    p_pid = pid[pool_rows][p_owner]
    is_op = kind.cat.codes.to_numpy() != KINDS.index("other")
    is_op &= ~pool_threads(events)
    is_op &= np.isin(pid, np.unique(p_pid))
    del pid
    op_rows = np.flatnonzero(is_op).astype(row_type)
    del is_op
    c_owner, c_start, c_end = self_pieces(lane[op_rows], ts[op_rows], dur[op_rows])
    c_owner = op_rows[c_owner]
    del op_rows
    c_lane = lane[c_owner]
    del lane
    c_pid = c_lane // width

    pids = np.unique(p_pid)
    if len(pids) == 1:  # one process: no copies of the pieces
        covered = _union_covered(c_start, c_end, p_start, p_end)
    else:
        covered = np.zeros(len(p_start))
    for q in pids if len(pids) > 1 else []:
        here, theirs = p_pid == q, c_pid == q
        covered[here] = _union_covered(c_start[theirs], c_end[theirs], p_start[here],
                                       p_end[here])
    del c_pid
    piece, op, overlap, split_count = _pairs(c_owner, c_lane, c_start, c_end, p_pid, p_start,
                                             p_end, p_owner, len(pool_rows), width)
    del c_owner, c_lane, c_start, c_end, p_pid
    # Scale each pool event's pieces to its self time, so the totals are exactly conserved.
    p_end -= p_start  # now each piece's length
    piece_total = np.bincount(p_owner, weights=p_end, minlength=len(pool_rows))
    del p_start, p_end
    pool_self = self_us[pool_rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(piece_total > 0, pool_self / piece_total, 0.0)
    del piece_total
    overlap_sum = np.bincount(piece, weights=overlap, minlength=len(covered))
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap *= covered[piece]  # now each pair's share
        overlap /= overlap_sum[piece]
        overlap *= scale[p_owner[piece]]
    del overlap_sum, piece
    attributed = np.bincount(op, weights=overlap, minlength=n)
    del op, overlap
    covered *= scale[p_owner]
    given = np.minimum(np.bincount(p_owner, weights=covered, minlength=len(pool_rows)),
                       pool_self)
    del covered, scale, p_owner
    cpu = self_us + attributed
    left = pool_self - given
    # rounding leaves ~1e-13 µs on fully covered events: that is attributed, not a leftover
    cpu[pool_rows] = np.where(left > 1e-9 * np.maximum(pool_self, 1.0), left, 0.0)
    return Attribution(cpu_us=cpu, pool_us=float(pool_self.sum()),
                       unattributed_us=float(cpu[pool_rows].sum()),
                       split_count=split_count, is_pool_work=is_pool,
                       attributed_us=attributed)


def cpu_us(events: pd.DataFrame, kind: pd.Series | None = None) -> np.ndarray:
    """CPU time per event (µs): an op on a dispatching thread gets its own self time plus the
    pool work attributed to it; a pool-work event keeps only the part of its self time that no
    op covered (0 once attributed); every other event its self time. Sums to the same total as
    self_us. See attribute()."""
    return attribute(events, kind).cpu_us
