"""Store write throughput: `python -m profiling.bench.store STORE [--cases N] [--writers K]`.

K processes each write one run of N cases (7 samples each, one trace of 4 KiB) into STORE (a data
dir or a postgresql:// URL) at once; prints the wall time, cases per second, and checks that
every case arrived. A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

WRITER = """
import os, sys
from profiling.storage.store import Store
store, n = Store(sys.argv[1]), int(sys.argv[2])
run_id = store.create_run({}, "store_bench", n, {})
for i in range(n):
    sha = store.put_trace(os.urandom(4096), "t.xplane.pb")
    store.add_case({"run_id": run_id, "case_id": f"{run_id}-{i:05d}", "idx": i, "status": "ok",
                    "variant": "nn_relu", "median_s": 1e-6, "trace_sha256": sha}, [1e-6] * 7)
store.finish_run(run_id, "complete")
print(run_id)
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m profiling.bench.store", description=__doc__)
    p.add_argument("store", help="a data dir or postgresql://user@host:port/db")
    p.add_argument("--cases", type=int, default=300)
    p.add_argument("--writers", type=int, default=2)
    args = p.parse_args(argv)
    from profiling.storage.store import Store

    Store(args.store).close()  # schema first: the writers then race only on rows
    env = {**os.environ, "RELU_LAB_MACHINE": "store_bench"}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, args.store, str(args.cases)],
                              stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(args.writers)]
    run_ids = [proc.communicate()[0].strip() for proc in procs]
    wall = time.perf_counter() - start
    if any(proc.returncode for proc in procs):
        print("error: a writer failed", file=sys.stderr)
        return 1
    with Store(args.store) as store:
        found = len(store.cases(run_ids))
    total = args.cases * args.writers
    print(f"{args.writers} writers x {args.cases} cases: {wall:.2f} s wall, "
          f"{total / wall:.0f} cases/s; {found}/{total} cases found")
    return 0 if found == total else 1


if __name__ == "__main__":
    sys.exit(main())
