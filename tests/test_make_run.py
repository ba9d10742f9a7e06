"""`make run`: the dashboard listens on loopback unless the user chose the network
(`make run HOST=0.0.0.0` or RELU_LAB_HOST); checked on the listening sockets of a real
Streamlit server started with the command `make run` runs."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from sockets import assert_loopback_only

from app.headless import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[1]


def make_run_command(*variables: str, env: dict | None = None) -> list[str]:
    """The command line `make run` runs (its `build` prerequisite taken as done), with this
    test's virtualenv."""
    out = subprocess.run(["make", "-s", "-o", "build", "-n", "run", f"VENV={sys.prefix}",
                          *variables], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    lines = out.replace("\\\n", " ").strip().splitlines()
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_make_run_serves_on_loopback_only(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RELU_LAB_HOST"}
    env.update(RELU_LAB_DATA=str(tmp_path / "data"), TF_CPP_MIN_LOG_LEVEL="2")
    command = make_run_command(f"PORT={port}", env=env)
    log = tmp_path / "streamlit.log"
    with open(log, "wb") as out:
        # `env` applies the recipe's VAR=value prefixes, then execs streamlit (no shell left over)
        process = subprocess.Popen(["env", *command], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log)
        assert_loopback_only(process.pid, {port})
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_network_is_served_only_when_asked():
    env = {k: v for k, v in os.environ.items() if k != "RELU_LAB_HOST"}

    def address(command: list[str]) -> str | None:
        found = [a.split("=", 1)[1] for a in command if a.startswith("RELU_LAB_HOST=")]
        return found[0] if found else None

    assert "--server.address" in make_run_command(env=env)
    loopback = make_run_command(env=env)
    assert loopback[loopback.index("--server.address") + 1] == "127.0.0.1"
    chosen = make_run_command("HOST=0.0.0.0", env=env)
    assert chosen[chosen.index("--server.address") + 1] == "0.0.0.0"
    # a shell's own HOST variable (tcsh exports the hostname) is not a choice of address
    shell_host = make_run_command(env={**env, "HOST": "buildbox"})
    assert shell_host[shell_host.index("--server.address") + 1] == "127.0.0.1"
    from_env = make_run_command(env={**env, "RELU_LAB_HOST": "0.0.0.0"})
    assert from_env[from_env.index("--server.address") + 1] == "0.0.0.0"
    # the viewers the dashboard starts (XProf, Perfetto) follow the same choice
    assert address(chosen) == "0.0.0.0" and address(loopback) == "127.0.0.1"
