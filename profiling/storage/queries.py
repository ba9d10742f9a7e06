"""Reading the store: runs, cases and what hangs off them, as DataFrames; and the reads History
needs (a case across runs, runs newest first, the settings cases were run with). Reads never
write: a run whose process died reads as interrupted before `recover` records it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import sqlalchemy as sa

from profiling.storage import schema as t
from profiling.storage.database import Database
from profiling.storage.migrations import current_version
from profiling.storage.runs import RunIdError, UnknownRunError, ambiguous_prefix, is_stale
from profiling.storage.stored_json import decode

# History's filter keys that name a column of runs rather than of cases
RUN_FILTER_COLUMNS = {"machine": t.runs.c.machine, "run_label": t.runs.c.label,
                      "host": t.runs.c.host, "status": t.runs.c.status}


def _ids(run_ids: Sequence[str] | str) -> list[str]:
    return [run_ids] if isinstance(run_ids, str) else list(run_ids)


def _machine() -> sa.ColumnElement:
    return sa.func.coalesce(t.runs.c.machine, t.runs.c.host).label("machine")


class RunQueries(Database):
    """The reading half of a Store."""

    def count(self, table: str) -> int:
        """Rows in one of the store's tables."""
        if table not in t.TABLES:
            raise ValueError(f"unknown table {table!r}")
        return int(self.scalar(sa.select(sa.func.count()).select_from(t.TABLES[table])))

    def schema_version(self) -> int:
        """The database's schema version (its Alembic revision number)."""
        with self._lock, self.engine.connect() as conn:
            return current_version(conn)

    def list_runs(self, kind: str | None = None) -> pd.DataFrame:
        """run_id, created_at, status (running|complete|interrupted|failed|incomplete: imported
        while running), n_cases (stored so far), label, spec_json, finished_at, n_planned (cases
        in the spec), noise_verdict (quiet|noisy|unknown, None before it is known), noise_json,
        machine and kind (profile, scenario, claims, distributed, capture, model), newest first;
        only runs of `kind` when given."""
        r, c = t.runs.c, t.cases.c
        stored = (sa.select(sa.func.count()).where(c.run_id == r.run_id)
                  .scalar_subquery().label("n_cases"))
        df = self.query(sa.select(
            r.run_id, r.created_at, r.status, stored, r.label, r.spec_json, r.finished_at,
            r.n_cases.label("n_planned"), r.noise_verdict, r.noise_json, r.machine, r.kind,
            r.pid, r.host)
            .where(r.kind == kind if kind is not None else sa.true())
            .order_by(r.created_at.desc(), r.run_id.desc()))
        dead = [is_stale(x.status, x.host, x.pid, x.created_at) for x in df.itertuples()]
        df.loc[dead, "status"] = "interrupted"
        return df.drop(columns=["pid", "host"])

    def data_version(self) -> tuple:
        """Changes whenever a run or a case is added or a run changes status: a cache key."""
        r = t.runs.c
        df = self.query(sa.select(
            sa.select(sa.func.count()).select_from(t.cases).scalar_subquery().label("cases"),
            sa.func.count().label("runs"), sa.func.count(r.finished_at).label("finished"),
            sa.func.max(r.finished_at).label("last"),
            sa.func.count(r.noise_verdict).label("judged")).select_from(t.runs))
        return tuple(None if pd.isna(v) else v for v in df.iloc[0])

    def matching_runs(self, run_id: str) -> list[tuple[str, str | None]]:
        """(run_id, label) of the runs this id names, newest first: the run itself when the id
        is a full one, else every run it is a prefix of; 'latest' is the newest run. RunIdError
        for an empty or blank id (it would be a prefix of every id)."""
        if not run_id.strip():
            raise RunIdError("empty run id (give a run id, a unique prefix or 'latest')")
        r = t.runs.c
        newest_first = sa.select(r.run_id, r.label).order_by(r.created_at.desc(),
                                                             r.run_id.desc())
        if run_id == "latest":
            df = self.query(newest_first.limit(1))
        else:
            # a literal prefix: LIKE would read '_' and '%' in it as wildcards
            df = self.query(newest_first.where(
                sa.func.substr(r.run_id, 1, len(run_id)) == run_id))
            if run_id in set(df.run_id):  # a full id wins over longer ids it is a prefix of
                df = df[df.run_id == run_id]
        return [(str(x), None if pd.isna(lb) else str(lb))
                for x, lb in zip(df.run_id, df.label, strict=True)]

    def resolve_run(self, run_id: str) -> str:
        """Full run id from an id or unique prefix; 'latest' is the newest run.
        UnknownRunError when none matches, RunIdError (a subclass) for a blank id or a prefix
        of several runs (it names them)."""
        matches = self.matching_runs(run_id)
        if not matches:
            raise UnknownRunError(run_id)
        if len(matches) > 1:
            raise ambiguous_prefix(run_id, matches)
        return matches[0][0]

    def run(self, run_id: str) -> dict:
        """The run's row (every column of runs); UnknownRunError."""
        df = self.query(sa.select(t.runs).where(t.runs.c.run_id == run_id))
        if df.empty:
            raise UnknownRunError(run_id)
        return df.iloc[0].to_dict()

    def cases(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """One row per case with the columns in CASE_COLUMNS (times s, bandwidth GB/s) and its
        run's label as run_label."""
        ids = _ids(run_ids)
        if not ids:
            return pd.DataFrame(columns=[*t.CASE_COLUMNS, "run_label"])
        c = t.cases.c
        return self.query(
            sa.select(*(c[n] for n in t.CASE_COLUMNS), t.runs.c.label.label("run_label"))
            .select_from(t.cases.join(t.runs, t.runs.c.run_id == c.run_id))
            .where(c.run_id.in_(ids)).order_by(c.run_id, c.idx))

    def samples(self, case_id: str) -> pd.DataFrame:
        """repeat, seconds_per_call."""
        s = t.samples.c
        return self.query(sa.select(s.repeat, s.seconds_per_call).where(s.case_id == case_id)
                          .order_by(s.repeat))

    def op_stats(self, case_id: str) -> pd.DataFrame:
        """op_name, op_type, occurrences, self_time_us, total_time_us, device."""
        o = t.op_stats.c
        return self.query(sa.select(*(o[n] for n in t.OP_STATS_COLUMNS))
                          .where(o.case_id == case_id).order_by(o.self_time_us.desc()))

    def breakdown(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """case_id, compute_us, memcpy_us, collective_us, idle_us, other_us."""
        c = t.cases.c
        return self.query(
            sa.select(t.breakdown)
            .select_from(t.breakdown.join(t.cases, c.case_id == t.breakdown.c.case_id))
            .where(c.run_id.in_(_ids(run_ids))).order_by(c.run_id, c.idx))

    def fusion(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """Fusion rows (FUSION_COLUMNS plus run_id); fused/compiled as bool."""
        f = t.fusion.c
        df = self.query(sa.select(f.run_id, *(f[n] for n in t.FUSION_COLUMNS))
                        .where(f.run_id.in_(_ids(run_ids)))
                        .order_by(f.run_id, t.insertion_order(t.fusion)))
        for col in ("fused", "compiled"):
            df[col] = df[col].map(lambda v: None if v is None or pd.isna(v) else bool(v))
        return df

    def roof(self, run_ids: Sequence[str] | str) -> pd.DataFrame:
        """run_id plus ROOF_COLUMNS, by run, device/threads/allocator and working set."""
        r = t.roof.c
        return self.query(sa.select(r.run_id, *(r[n] for n in t.ROOF_COLUMNS))
                          .where(r.run_id.in_(_ids(run_ids)))
                          .order_by(r.run_id, r.device, r.threads, r.allocator,
                                    r.working_set_bytes))

    def roof_history(self, host: str, device: str, threads: int, allocator: str,
                     method: str) -> list[dict]:
        """The best copy GB/s each working set has shown in earlier runs of this host and
        configuration: [{"working_set_bytes", "gbps"}]."""
        r = t.roof.c
        df = self.query(
            sa.select(r.working_set_bytes, sa.func.max(r.gbps).label("gbps"))
            .select_from(t.roof.join(t.runs, t.runs.c.run_id == r.run_id))
            .where(t.runs.c.host == host, r.device == device, r.threads == threads,
                   r.allocator == allocator, r.method == method, r.gbps > 0)
            .group_by(r.working_set_bytes))
        return df.to_dict("records")

    def calibration(self, run_id: str) -> pd.DataFrame:
        """CALIBRATION_COLUMNS of the run's bandwidth calibrations."""
        k = t.calibration.c
        return self.query(sa.select(*(k[n] for n in t.CALIBRATION_COLUMNS))
                          .where(k.run_id == run_id))

    def environment(self, run_id: str) -> dict:
        """The environment captured with the run (TF version, CPU, git commit, ...)."""
        return decode(self.run(run_id).get("environment_json"), "environment_json", run_id)

    # ---- History --------------------------------------------------------------------------
    def case_across_runs(self, filters: Mapping[str, str]) -> pd.DataFrame:
        """The successful cases whose columns equal `filters` (compared as text; keys of cases
        or RUN_FILTER_COLUMNS), oldest run first: machine (the run's, else its host), run_id,
        created_at, machine_json, environment_json, run_label, case_id, median_s, ci95_low_s,
        ci95_high_s, n_samples."""
        c, r = t.cases.c, t.runs.c
        where = [c.status == "ok"]
        for key, value in filters.items():
            column = RUN_FILTER_COLUMNS.get(key)
            where.append(sa.cast(c[key] if column is None else column, sa.Text) == value)
        return self.query(
            sa.select(_machine(), r.run_id, r.created_at, r.machine_json, r.environment_json,
                      r.label.label("run_label"), c.case_id, c.median_s, c.ci95_low_s,
                      c.ci95_high_s, c.n_samples)
            .select_from(t.cases.join(t.runs, r.run_id == c.run_id))
            .where(*where).order_by(r.created_at, r.run_id))

    def runs_newest_first(self) -> pd.DataFrame:
        """run_id, machine (else host), label, host, status, machine_json, environment_json."""
        r = t.runs.c
        return self.query(sa.select(r.run_id, _machine(), r.label, r.host, r.status,
                                    r.machine_json, r.environment_json)
                          .order_by(r.created_at.desc(), r.run_id.desc()))

    def case_settings(self, columns: Sequence[str]) -> pd.DataFrame:
        """The distinct values of these cases columns among successful cases, with the machine
        that ran them (column machine), sorted by the columns."""
        c = t.cases.c
        cols = [c[n] for n in columns]
        return self.query(sa.select(*cols, _machine()).distinct()
                          .select_from(t.cases.join(t.runs, t.runs.c.run_id == c.run_id))
                          .where(c.status == "ok").order_by(*cols))
