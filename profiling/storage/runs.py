"""Writing runs: create and finish them, add their cases with samples, op stats and breakdown,
fusion rows, calibration and roof, recover after dead processes, delete runs.

Every write is one short transaction (SQLite: BEGIN IMMEDIATE, retried while busy), so readers
never block and concurrent writer processes lose nothing."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from profiling.process import pid_alive
from profiling.storage import schema as t
from profiling.storage.database import plain
from profiling.storage.db import upsert
from profiling.storage.stored_json import decode
from profiling.storage.trace_store import TraceStore, default_name
from profiling.tempdirs import remove_dead_temp_dirs

RUN_STATUSES = ("running", "complete", "interrupted", "failed", "incomplete")
CASE_STATUSES = ("ok", "skipped", "failed")


class UnknownRunError(KeyError):
    def __str__(self) -> str:
        return f"unknown run id: {self.args[0]}"


class RunIdError(UnknownRunError):
    """An id that names no single run: blank, or a prefix of several; str() is one line."""

    def __str__(self) -> str:
        return str(self.args[0])


SHOWN_MATCHES = 6  # an ambiguous prefix names this many of its runs


def ambiguous_prefix(prefix: str, matches: Sequence[tuple[str, str | None]]) -> RunIdError:
    """The error for a prefix of several runs: (run_id, label) pairs, newest first."""
    shown = "; ".join(f"{run_id} ({label or 'no label'})"
                      for run_id, label in matches[:SHOWN_MATCHES])
    more = f"; and {len(matches) - SHOWN_MATCHES} more" if len(matches) > SHOWN_MATCHES else ""
    return RunIdError(f"run id prefix {prefix!r} matches {len(matches)} runs: {shown}{more} "
                      "(give more of the id)")


class RunInUseError(ValueError):
    """The run's process is still writing it; str() is one line."""

    def __str__(self) -> str:
        return f"run {self.args[0]} is still running; stop it before deleting it"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _row(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's values for the table's columns, as the store keeps them."""
    return {k: plain(v) for k, v in row.items() if k in table.c}


def is_stale(status: Any, host: Any, pid: Any, created_at: Any) -> bool:
    """A run left 'running' by a process of this host that no longer exists."""
    return (status == "running" and host == socket.gethostname()
            and not pid_alive(None if pd.isna(pid) else int(pid), created_at))


class RunWrites(TraceStore):
    """The writing half of a Store."""

    def create_run(self, spec_json: Mapping | str, label: str = "", n_cases: int = 0,
                   environment: Mapping | None = None, run_id: str | None = None) -> str:
        from profiling.measurement.machine import machine_columns

        run_id = run_id or new_run_id()
        spec = spec_json if isinstance(spec_json, Mapping) else decode(spec_json, "spec_json",
                                                                       run_id)
        row = {"run_id": run_id, "created_at": now_iso(), "status": "running", "n_cases": n_cases,
               "kind": str(spec.get("kind") or "profile"),
               "label": label or "", "pid": os.getpid(), "host": socket.gethostname(),
               **machine_columns(environment),
               "spec_json": spec_json if isinstance(spec_json, str) else json.dumps(spec_json),
               "environment_json": json.dumps(environment or {}, default=str)}
        self._write(lambda c: upsert(c, t.runs, [_row(t.runs, row)]))
        return run_id

    @contextlib.contextmanager
    def saving_run(self, spec_json: Mapping | str, label: str = "", n_cases: int = 0,
                   environment: Mapping | None = None, kind: str | None = None,
                   run_id: str | None = None) -> Iterator[str]:
        """Create a run, yield its id, finish it: complete when the block ends, interrupted on
        KeyboardInterrupt (Ctrl-C, a cancelled run), failed on any other exception (re-raised).
        `kind` (scenario, distributed, capture) is recorded in the run's spec."""
        if kind is not None:
            spec_json = {"kind": kind, **(json.loads(spec_json) if isinstance(spec_json, str)
                                          else spec_json)}
        run_id = self.create_run(spec_json, label, n_cases, environment, run_id)
        try:
            yield run_id
        except BaseException as e:
            self.finish_run(run_id, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
            raise
        self.finish_run(run_id, "complete")

    def _update_run(self, run_id: str, **values: Any) -> None:
        self._write(lambda c: c.execute(
            t.runs.update().where(t.runs.c.run_id == run_id).values(**values)))

    def set_environment(self, run_id: str, environment: Mapping) -> None:
        from profiling.measurement.machine import machine_columns

        m = machine_columns(environment)
        self._update_run(run_id, environment_json=json.dumps(environment, default=str),
                         machine=m["machine"], machine_json=m["machine_json"])

    def finish_run(self, run_id: str, status: str) -> None:
        """Set the run's final status. Whoever writes it, "complete" is stored as "failed" when
        some case failed and none is ok: such a run measured nothing."""
        if status not in RUN_STATUSES:
            raise ValueError(f"bad run status {status!r}; accepted: {', '.join(RUN_STATUSES)}")
        c = t.cases.c

        def write(conn: sa.Connection) -> None:
            final = status
            if status == "complete":
                found = set(conn.execute(sa.select(c.status).distinct()
                                         .where(c.run_id == run_id)).scalars())
                final = "failed" if "failed" in found and "ok" not in found else status
            conn.execute(t.runs.update().where(t.runs.c.run_id == run_id)
                         .values(status=final, finished_at=now_iso()))

        self._write(write)

    def set_noise(self, run_id: str, noise: Mapping[str, Any]) -> None:
        """The run's noise verdict (quiet|noisy|unknown) and what it rests on."""
        self._update_run(run_id, noise_verdict=noise.get("verdict"),
                         noise_json=json.dumps(noise, default=str))

    def add_case(self, row: Mapping[str, Any], samples: Sequence[float] = (),
                 op_stats: pd.DataFrame | None = None, breakdown: Mapping | None = None) -> None:
        """Insert one case with its samples, op stats and breakdown, atomically."""
        row = dict(row)
        row.pop("run_label", None)  # derived by cases() from the run, not a column of cases
        unknown = set(row) - set(t.cases.c.keys())
        if unknown:
            raise ValueError(f"not a column of cases: {', '.join(sorted(unknown))}")
        case_id = row["case_id"]

        def write(conn: sa.Connection) -> None:
            upsert(conn, t.cases, [_row(t.cases, row)])
            upsert(conn, t.samples, [{"case_id": case_id, "repeat": i,
                                      "seconds_per_call": float(s)}
                                     for i, s in enumerate(samples)])
            if op_stats is not None and len(op_stats):
                conn.execute(t.op_stats.delete().where(t.op_stats.c.case_id == case_id))
                upsert(conn, t.op_stats, [
                    {"case_id": case_id, **{c: plain(r[c]) for c in t.OP_STATS_COLUMNS}}
                    for r in op_stats.to_dict("records")])
            if breakdown is not None:
                upsert(conn, t.breakdown, [{"case_id": case_id, **{
                    k: plain(breakdown.get(k)) for k in t.BREAKDOWN_COLUMNS[1:]}}])

        self._write(write)

    def add_fusion(self, run_id: str, rows: pd.DataFrame) -> None:
        records = [{"run_id": run_id, **{k: plain(r.get(k)) for k in (*t.FUSION_COLUMNS, "ops")}}
                   for r in rows.to_dict("records")]
        self._write(lambda c: upsert(c, t.fusion, records))

    def add_calibration(self, run_id: str, row: Mapping[str, Any]) -> None:
        record = {"run_id": run_id, **{k: plain(row.get(k)) for k in t.CALIBRATION_COLUMNS}}
        self._write(lambda c: upsert(c, t.calibration, [record]))

    def add_roof(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """The roof curve measured for one (device, threads, allocator) of a run (ROOF_COLUMNS)."""
        records = [{"run_id": run_id, **{k: plain(r.get(k)) for k in t.ROOF_COLUMNS}}
                   for r in rows]
        self._write(lambda c: upsert(c, t.roof, records))

    def mark_stale_runs(self) -> int:
        """Runs left 'running' by a process on this host that no longer exists -> interrupted."""
        r = t.runs.c
        rows = self.query(sa.select(r.run_id, r.status, r.pid, r.host, r.created_at)
                          .where(r.status == "running"))
        stale = [x.run_id for x in rows.itertuples()
                 if is_stale(x.status, x.host, x.pid, x.created_at)]
        for run_id in stale:
            # only while still 'running': a run that finished between the read above and here
            # (its process then exited) keeps the status it finished with
            self._write(lambda c, run_id=run_id: c.execute(
                t.runs.update().where(r.run_id == run_id, r.status == "running")
                .values(status="interrupted", finished_at=now_iso())))
        return len(stale)

    def recover(self) -> int:
        """Clean up after processes that died: their runs left 'running' become interrupted and
        their temp dirs are removed. The commands that write call it; returns the runs marked."""
        marked = self.mark_stale_runs()
        remove_dead_temp_dirs()
        return marked

    def delete_runs(self, run_ids: Sequence[str]) -> list[Path]:
        """Remove these runs' rows from every table in one transaction, then the trace files
        no remaining case uses; returns the files removed. UnknownRunError for an id not in the
        store, RunInUseError for a run still running (nothing is deleted then)."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        self.mark_stale_runs()
        c = t.cases.c

        def write(conn: sa.Connection) -> list[str]:
            status = dict(conn.execute(sa.select(t.runs.c.run_id, t.runs.c.status)
                                       .where(t.runs.c.run_id.in_(ids))).all())
            for run_id in ids:
                if run_id not in status:
                    raise UnknownRunError(run_id)
                if status[run_id] == "running":
                    raise RunInUseError(run_id)
            shas = conn.execute(sa.select(c.trace_sha256).distinct()
                                .where(c.run_id.in_(ids), c.trace_sha256.is_not(None))
                                ).scalars().all()
            of_runs = sa.select(c.case_id).where(c.run_id.in_(ids))
            for table in t.TABLES.values():  # rows found through their case before the cases
                if "case_id" in table.c and "run_id" not in table.c:
                    conn.execute(table.delete().where(table.c.case_id.in_(of_runs)))
            by_run = [x for x in t.TABLES.values() if "run_id" in x.c]
            for table in sorted(by_run, key=lambda x: x is t.runs):  # the runs rows last
                conn.execute(table.delete().where(table.c.run_id.in_(ids)))
            names = []
            for sha in shas:
                if conn.execute(sa.select(c.case_id).where(c.trace_sha256 == sha)
                                .limit(1)).first():
                    continue  # another run stored the same trace
                name = conn.execute(sa.select(t.traces.c.filename)
                                    .where(t.traces.c.sha256 == sha)).scalar()
                names.append(str(name) if name else default_name(sha))
                conn.execute(t.traces.delete().where(t.traces.c.sha256 == sha))
                conn.execute(t.trace_blobs.delete().where(t.trace_blobs.c.sha256 == sha))
            return names

        removed = []
        for name in self._write(write):
            path = self.trace_file(name)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
        return removed
