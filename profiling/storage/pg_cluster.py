"""A throwaway local PostgreSQL cluster: for the tests and `make run-team`.

`start_cluster(dir)` runs initdb + pg_ctl as an unprivileged user (initdb refuses root: as root
the cluster belongs to the `postgres` system user, run through `runuser`), listening only on
127.0.0.1 at a free port, trust auth for that loopback socket. `python -m profiling.storage.pg_cluster
start DIR` starts it (or finds it running), creates database relu_lab and prints its URL;
`stop DIR` stops it.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "relu_lab"


class ClusterError(RuntimeError):
    """PostgreSQL is not installed or would not start; str() is one line with the reason."""


def find_bin(name: str) -> str:
    """initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                    else 0, reverse=True):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    raise ClusterError(f"PostgreSQL's {name} was not found (install Debian's `postgresql`: "
                       "make test does it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    """As root, run as the `postgres` system user (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@dataclass
class Cluster:
    datadir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(_as_owner([find_bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                                  "-w", "stop"]), capture_output=True, timeout=60)


def start_cluster(root: str | os.PathLike, port: int | None = None) -> Cluster:
    """initdb in root/data (once) and start it; ClusterError with the reason on failure."""
    root = Path(root)
    datadir = root / "data"
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o700)
    port = port or free_port()
    try:
        if not (datadir / "PG_VERSION").exists():
            _run([find_bin("initdb"), "-D", str(datadir), "-U", SUPERUSER, "-A", "trust",
                  "-E", "UTF8", "--no-sync"], "initdb")
        _run([find_bin("pg_ctl"), "-D", str(datadir), "-l", str(datadir / "server.log"), "-w",
              "-t", "60", "-o", f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 "
              "-c fsync=off -c max_connections=200", "start"], "pg_ctl start")
    except subprocess.TimeoutExpired:
        raise ClusterError("PostgreSQL did not start within 60 s") from None
    return Cluster(datadir, port)


def create_database(cluster: Cluster, name: str) -> str:
    """The URL of database `name` in the cluster, created when missing."""
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"


def _run(cmd: list[str], what: str) -> None:
    out = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ClusterError(f"{what} failed: {tail[0]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m profiling.storage.pg_cluster",
                                description="A local PostgreSQL for trying the team store.")
    p.add_argument("action", choices=["start", "stop"])
    p.add_argument("dir", help="cluster directory (created)")
    p.add_argument("--port", type=int, default=5433)
    args = p.parse_args(argv)
    try:
        if args.action == "start":
            print(create_database(start_cluster(args.dir, args.port), "relu_lab"))
        else:
            Cluster(Path(args.dir) / "data", args.port).stop()
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
