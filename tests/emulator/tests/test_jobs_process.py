# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Registered jobs run as real processes (raw_exec-like) and are replaced on a destructive update:
reference nomad-jobs-behaviour.md §2.7 (a changed spec is a new version) and §3.4 (an env change is a
create/destroy update); the allocation endpoints work on them (nomad-alloc-api-behaviour.md)."""
from __future__ import annotations

import pytest
from conftest import Api
from jobfiles import allocations_until, parse, register

JOB = '''job "proc" {
  datacenters = ["dc1"]
  group "app" {
    task "main" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo $GREETING; trap 'exit 0' TERM; while :; do sleep 1; done"]
      }
      env {
        GREETING = "hello"
      }
      kill_timeout = "2s"
    }
  }
}
'''


@pytest.fixture(scope="module")
def proc_emulator(module_emulators):
    return module_emulators("jobs-process.yml")


def running(allocs: list, version: int) -> list:
    return [alloc for alloc in allocs if alloc["JobVersion"] == version and alloc["ClientStatus"] == "running"
            and alloc["TaskStates"]["main"]["State"] == "running"]


def greeting(api: Api, alloc_id: str) -> str:
    """The task's first stdout line, read by following its log (blocks until the task wrote it)."""
    response = api.get(f"/v1/client/fs/logs/{alloc_id}", stream=True, timeout=20,
                       params={"task": "main", "type": "stdout", "follow": "true", "plain": "true"})
    try:
        assert response.status_code == 200, response.text
        return next(response.iter_lines()).decode().strip()
    finally:
        response.close()


def test_job_runs_processes_and_env_change_replaces_them(proc_emulator):
    api = Api(proc_emulator)
    register(api, parse(api, JOB))
    first = running(allocations_until(api, "proc", lambda allocs: running(allocs, 0)), 0)[0]
    assert greeting(api, first["ID"]) == "hello"
    pid = proc_emulator.control.tasks(first["ID"])["main"]["pid"]
    assert pid
    register(api, parse(api, JOB.replace('"hello"', '"bonjour"')))
    allocs = allocations_until(api, "proc", lambda allocs: running(allocs, 1) and any(
        alloc["ID"] == first["ID"] and alloc["ClientStatus"] == "complete" for alloc in allocs))
    second = running(allocs, 1)[0]
    assert second["ID"] != first["ID"] and second["Name"] == first["Name"]
    assert greeting(api, second["ID"]) == "bonjour"
    assert proc_emulator.control.tasks(first["ID"])["main"]["state"] == "dead"
    # the allocation endpoints work on job allocations: stop replaces it (service job)
    stopped = api.post(f"/v1/allocation/{second['ID']}/stop")
    assert stopped.status_code == 200, stopped.text
    allocations_until(api, "proc", lambda allocs: any(alloc["ID"] == second["ID"] and alloc["NextAllocation"]
                                                      for alloc in allocs))
    api.request("DELETE", "/v1/job/proc")
    allocations_until(api, "proc", lambda allocs: all(alloc["ClientStatus"] == "complete" for alloc in allocs))
