# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_restart against the emulator: restarted tasks really are new processes."""

from __future__ import annotations

from pathlib import Path


from tests.integration.observe import running_allocations

RESTART_MODULE = "nomadops.nomad.nomad_alloc_restart"


def restart_posts(emulator):
    return {path: count for path, count in emulator.control.requests().items() if path.endswith("/restart")}


def starts(tasks, task):
    return (Path(tasks[task]["task_dir"]) / "starts.log").read_text().split()


def test_restart_one_task_with_wait_gives_a_new_process(emulator, ansible_runner):
    target = running_allocations(emulator, "web")[0]
    before = emulator.control.tasks(target["ID"])

    run = ansible_runner.playbook([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "restart", "register": "restarted",
                   "nomadops.nomad.nomad_alloc_restart": {"id": target["ID"], "task": "server", "wait": True,
                                                          "wait_timeout": 60}}],
    }], args=("--diff",)).assert_ok()

    result = run.task("restart")
    assert result["_status"] == "changed"
    assert [(a["ID"], a["tasks"]) for a in result["allocations"]] == [(target["ID"], ["server"])]
    # wait=true returned only once the task ran again: no polling needed here.
    after = emulator.control.tasks(target["ID"])
    assert after["server"]["state"] == "running"
    assert after["server"]["pid"] != before["server"]["pid"]
    assert after["server"]["restarts"] == before["server"]["restarts"] + 1
    assert starts(after, "server") == ["started", "started"]
    assert after["sidecar"]["pid"] == before["sidecar"]["pid"]  # only the named task
    # After a wait, the summary and the diff's after side show the state the wait observed, not the one before.
    server = next(task for task in result["summary"][0]["tasks"] if task["task"] == "server")
    assert (server["state"], server["restarts"]) == ("running", before["server"]["restarts"] + 1)
    assert server["last_event"].startswith("Started")
    diff = result["diff"][0]
    assert f"task server: running, restarts {before['server']['restarts']}\n" == diff["before"]
    assert f"task server: running, restarts {before['server']['restarts'] + 1}, restarted\n" == diff["after"]
    assert "_observed" not in result["allocations"][0]


def test_restart_without_task_restarts_the_running_tasks(emulator, ansible_runner):
    target = running_allocations(emulator, "web")[1]
    before = emulator.control.tasks(target["ID"])

    run = ansible_runner.adhoc(RESTART_MODULE, f"id={target['ID']} wait=true").assert_ok()

    assert run.results[-1]["result"]["allocations"][0]["tasks"] == ["server", "sidecar"]
    after = emulator.control.tasks(target["ID"])
    for task in ("server", "sidecar"):
        assert after[task]["pid"] != before[task]["pid"] and after[task]["state"] == "running"


def test_all_tasks_reruns_the_finished_prestart_task(emulator, ansible_runner):
    api = running_allocations(emulator, "api")[0]
    before = emulator.control.tasks(api["ID"])
    assert before["migrate"]["state"] == "dead"

    run = ansible_runner.adhoc(RESTART_MODULE, {"job": "api", "all_tasks": True, "wait": True}).assert_ok()

    assert run.results[-1]["result"]["allocations"][0]["tasks"] == ["migrate", "app"]
    after = emulator.control.tasks(api["ID"])
    assert after["migrate"]["restarts"] == before["migrate"]["restarts"] + 1
    assert after["app"]["pid"] != before["app"]["pid"] and after["app"]["state"] == "running"


def test_check_mode_restarts_nothing(emulator, ansible_runner):
    allocs = running_allocations(emulator, "web")
    before = {a["ID"]: emulator.control.tasks(a["ID"]) for a in allocs}
    emulator.control.reset_requests()

    run = ansible_runner.adhoc(RESTART_MODULE, "job=web client_status=running all_tasks=true", check=True).assert_ok()

    result = run.results[-1]["result"]
    assert result["changed"] is True and len(result["allocations"]) == 3
    assert restart_posts(emulator) == {}
    for alloc_id, tasks in before.items():
        assert emulator.control.tasks(alloc_id) == tasks


def test_bulk_restart_with_parallelism_one_restarts_every_allocation(emulator, ansible_runner):
    allocs = running_allocations(emulator, "web")
    before = {a["ID"]: emulator.control.tasks(a["ID"])["server"]["pid"] for a in allocs}
    emulator.control.reset_requests()

    run = ansible_runner.adhoc(RESTART_MODULE, "job=web client_status=running task=server parallelism=1 wait=true")

    run.assert_ok()
    assert sorted(a["ID"] for a in run.results[-1]["result"]["allocations"]) == sorted(before)
    assert sorted(restart_posts(emulator).values()) == [1, 1, 1]
    for alloc_id, pid in before.items():
        assert emulator.control.tasks(alloc_id)["server"]["pid"] != pid


def test_a_restart_answered_with_an_error_is_not_resent(emulator, ansible_runner):
    target = running_allocations(emulator, "web")[0]
    path = f"/v1/client/allocation/{target['ID']}/restart"
    pid = emulator.control.tasks(target["ID"])["server"]["pid"]
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{path}$", count=3, action="status", status=503,
                               body="No cluster leader", retry_after=1)
    try:
        run = ansible_runner.adhoc(RESTART_MODULE, f"id={target['ID']} task=server")
    finally:
        emulator.control.clear_faults()

    assert run.rc != 0
    assert run.results[-1]["result"]["msg"] == (
        f"1 of 1 allocation failed: {target['ID'][:8]} ({target['Name']}): No cluster leader")
    assert restart_posts(emulator) == {f"POST {path}": 1}
    assert emulator.control.tasks(target["ID"])["server"]["pid"] == pid
