# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The command line: ready line, options, errors, clean shutdown."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO_ROOT, SCENARIOS

from tests.emulator.harness import EmulatorProcess, EmulatorStartError
from tests.waiting import wait_until


def test_ready_line_and_state_dir(tmp_path):
    state_dir = tmp_path / "state"
    with EmulatorProcess(SCENARIOS / "demo.yml", state_dir=state_dir) as emulator:
        assert emulator.address.startswith("http://127.0.0.1:")
        allocs = emulator.allocations()
        web = next(a for a in allocs if a["JobID"] == "web")
        task_dir = emulator.control.tasks(web["ID"])["server"]["task_dir"]
        assert task_dir == str(state_dir / web["ID"] / "server")
    assert state_dir.exists()  # an explicit state dir is kept


def test_task_environment(tmp_path):
    scenario = tmp_path / "env.yml"
    scenario.write_text(
        "namespaces: [default, prod]\n"
        "jobs:\n  - id: envjob\n    namespace: prod\n    type: service\n    groups:\n      - name: grp\n"
        "        tasks:\n          - name: show\n"
        "            command: ['/bin/sh', '-c', 'env > \"$NOMAD_TASK_DIR/env.txt\"; while :; do sleep 1; done']\n")
    with EmulatorProcess(scenario) as emulator:
        alloc = emulator.allocations()[0]
        task_dir = emulator.control.tasks(alloc["ID"])["show"]["task_dir"]
        env_file = f"{task_dir}/env.txt"
        import os
        wait_until(lambda: os.path.exists(env_file) and os.path.getsize(env_file) > 0, what="env.txt")
        env = dict(line.split("=", 1) for line in open(env_file, encoding="utf-8").read().splitlines() if "=" in line)
    assert env["NOMAD_ALLOC_ID"] == alloc["ID"]
    assert env["NOMAD_ALLOC_NAME"] == "envjob.grp[0]"
    assert env["NOMAD_JOB_NAME"] == "envjob" and env["NOMAD_GROUP_NAME"] == "grp"
    assert env["NOMAD_TASK_NAME"] == "show" and env["NOMAD_NAMESPACE"] == "prod"
    assert env["NOMAD_TASK_DIR"] == task_dir
    assert env["NOMAD_ALLOC_DIR"].endswith(f"{alloc['ID']}/alloc")


def test_bad_scenario_fails_with_stderr(tmp_path):
    missing = tmp_path / "missing.yml"
    with pytest.raises(EmulatorStartError, match="cannot read scenario"):
        EmulatorProcess(missing).start()


def test_help_runs():
    completed = subprocess.run([sys.executable, "-m", "tests.emulator", "--help"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=30, check=False)
    assert completed.returncode == 0
    assert "--string-token-compare" in completed.stdout


def test_stopping_the_emulator_ends_exec_sessions(emulator_factory):
    import json
    import os
    from urllib.parse import quote

    import websocket

    emulator = emulator_factory()
    web = next(a for a in emulator.allocations() if a["JobID"] == "web")
    task_dir = emulator.control.tasks(web["ID"])["server"]["task_dir"]
    pid_file = os.path.join(task_dir, "exec.pid")
    command = quote(json.dumps(["/bin/sh", "-c", 'echo $$ > "$NOMAD_TASK_DIR/exec.pid"; exec sleep 300']))
    url = emulator.address.replace("http://", "ws://")
    session = websocket.create_connection(f"{url}/v1/client/allocation/{web['ID']}/exec?task=server&command={command}",
                                          timeout=10)
    try:
        wait_until(lambda: os.path.exists(pid_file) and open(pid_file, encoding="utf-8").read().strip(),
                   what="the exec'd command to start")
        pid = int(open(pid_file, encoding="utf-8").read())
        emulator.stop()
        assert emulator.process.returncode == 0

        def gone():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False
        wait_until(gone, timeout=10, what="the exec'd process to be killed")
    finally:
        session.close()


def test_fixed_allocation_and_node_ids(tmp_path):
    """A group's `ids` fix its first allocations' IDs (README.md's examples name the demo's); more are random."""
    fixed = ["8d1c4f2a-7b3e-4c1d-9a5f-2e6b8c0d4a11", "5a22c1f3-9e4b-4a7c-8d2e-6f1a3b5c7d22"]
    scenario = tmp_path / "ids.yml"
    scenario.write_text(
        "nodes:\n  - name: node-1\n    id: 4f2a81c9-3b6e-4d2a-9c1f-7e5d8a0b6c31\n"
        "jobs:\n  - id: web\n    groups:\n      - name: frontend\n        count: 3\n"
        f"        ids: [{fixed[0]}, {fixed[1]}]\n")
    with EmulatorProcess(scenario) as emulator:
        allocs = {a["Name"]: a for a in emulator.allocations()}
        assert [allocs[f"web.frontend[{n}]"]["ID"] for n in (0, 1)] == fixed
        assert allocs["web.frontend[2]"]["ID"] not in fixed
        assert {a["NodeID"] for a in allocs.values()} == {"4f2a81c9-3b6e-4d2a-9c1f-7e5d8a0b6c31"}
    scenario.write_text(f"jobs:\n  - id: web\n    groups:\n      - name: g\n        count: 2\n"
                        f"        ids: [{fixed[0]}, {fixed[0]}]\n")
    with pytest.raises(EmulatorStartError, match="used twice"):
        EmulatorProcess(scenario).start()
