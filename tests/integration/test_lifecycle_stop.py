# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_stop against the emulator: processes stop, Nomad-style replacements appear, reruns change nothing."""

from __future__ import annotations


from tests.integration.observe import running_allocations
from tests.waiting import wait_until

STOP_MODULE = "nomadops.nomad.nomad_alloc_stop"


def allocations_by_id(emulator):
    return {a["ID"]: a for a in emulator.allocations("*")}


def stop_posts(emulator):
    return {path: count for path, count in emulator.control.requests().items() if path.endswith("/stop")}


def full_allocation(emulator, alloc_id):
    response = emulator.control.session.get(f"{emulator.address}/v1/allocation/{alloc_id}", timeout=30)
    response.raise_for_status()
    return response.json()


def test_stop_with_wait_stops_the_process_and_nomad_places_a_replacement(emulator, ansible_runner):
    target = running_allocations(emulator, "web")[0]
    pid = emulator.control.tasks(target["ID"])["server"]["pid"]

    run = ansible_runner.playbook("lifecycle_stop.yml", extra_vars={"stop_ids": [target["ID"]]}).assert_ok()

    result = run.task("Stop and wait")
    entry = result["allocations"][0]
    assert (entry["ID"], entry["Name"], entry["JobID"], entry["Namespace"], entry["changed"]) == (
        target["ID"], target["Name"], "web", "default", True)
    assert result["evaluation_ids"] == [entry["EvalID"]]
    # wait=true: terminal when the task returns.
    stopped = full_allocation(emulator, target["ID"])
    assert stopped["ClientStatus"] == "complete" and stopped["DesiredStatus"] == "stop"
    # the summary shows the statuses and task states the wait observed, not those before the stop
    assert (result["summary"][0]["client_status"], result["summary"][0]["desired_status"]) == ("complete", "stop")
    summarized = {task["task"]: task for task in result["summary"][0]["tasks"]}
    assert summarized["server"]["state"] == "dead", summarized
    assert summarized["server"]["last_event"].startswith("Killed: "), summarized
    tasks = emulator.control.tasks(target["ID"])
    assert tasks["server"]["state"] == "dead" and tasks["server"]["pid"] is None
    assert "TERM" in (open(f"{tasks['server']['task_dir']}/signals.log").read())
    replacement = full_allocation(emulator, stopped["NextAllocation"])
    assert replacement["PreviousAllocation"] == target["ID"]
    assert replacement["Name"] == target["Name"]
    wait_until(lambda: emulator.control.tasks(replacement["ID"])["server"]["pid"] not in (None, pid),
               what="the replacement's process")


def test_second_stop_is_not_a_change_and_sends_nothing(emulator, ansible_runner):
    target = running_allocations(emulator, "web")[-1]
    ansible_runner.adhoc(STOP_MODULE, f"id={target['ID']} wait=true").assert_ok()
    emulator.control.reset_requests()

    run = ansible_runner.adhoc(STOP_MODULE, f"id={target['ID'][:6]}").assert_ok()

    result = run.results[-1]["result"]
    assert result["changed"] is False
    assert result["evaluation_ids"] == []
    assert result["allocations"][0]["skipped_reason"].startswith("already stopping or stopped")
    assert stop_posts(emulator) == {}


def test_check_mode_leaves_every_process_running(emulator, ansible_runner):
    before = {a["ID"]: emulator.control.tasks(a["ID"]) for a in running_allocations(emulator, "cache")}
    emulator.control.reset_requests()

    run = ansible_runner.adhoc(STOP_MODULE, "job=cache namespace=prod", check=True).assert_ok()

    result = run.results[-1]["result"]
    assert result["changed"] is True
    assert sorted(a["ID"] for a in result["allocations"]) == sorted(before)
    assert all(a["changed"] and a["EvalID"] is None for a in result["allocations"])
    assert stop_posts(emulator) == {}
    for alloc_id, tasks in before.items():
        assert emulator.control.tasks(alloc_id) == tasks
        assert allocations_by_id(emulator)[alloc_id]["DesiredStatus"] == "run"


def test_a_dropped_stop_is_not_resent_and_does_not_hide_the_other_stops(emulator, ansible_runner):
    first, second = running_allocations(emulator, "cache")
    dropped_path = f"/v1/allocation/{first['ID']}/stop"
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{dropped_path}$", count=1, action="drop")
    try:
        run = ansible_runner.adhoc(STOP_MODULE, {"job": "cache", "namespace": "prod", "parallelism": 2,
                                                 "retries": 5})
    finally:
        emulator.control.clear_faults()

    assert run.rc != 0
    result = run.results[-1]["result"]
    message = result["msg"]
    assert "\n" not in message
    assert message.startswith(f"1 of 2 allocations failed: {first['ID'][:8]} ({first['Name']}): ")
    assert "the request may or may not have been applied" in message, message
    by_id = {a["ID"]: a for a in result["allocations"]}
    assert by_id[first["ID"]]["error"] and by_id[first["ID"]]["changed"] is False
    assert by_id[second["ID"]]["changed"] is True and by_id[second["ID"]]["EvalID"]
    assert result["changed"] is True
    assert result["evaluation_ids"] == [by_id[second["ID"]]["EvalID"]]
    # The connection dropped after the request was sent: never sent a second time, despite retries=5.
    assert stop_posts(emulator) == {f"POST {dropped_path}": 1, f"POST /v1/allocation/{second['ID']}/stop": 1}
    assert allocations_by_id(emulator)[first["ID"]]["DesiredStatus"] == "run"


def test_a_server_error_on_stop_is_reported_once_per_allocation(emulator, ansible_runner):
    target = running_allocations(emulator, "cache")[0]
    path = f"/v1/allocation/{target['ID']}/stop"
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{path}$", count=3, action="status", status=500,
                               body="No cluster leader")
    try:
        run = ansible_runner.adhoc(STOP_MODULE, f"id={target['ID']} namespace=prod")
    finally:
        emulator.control.clear_faults()

    assert run.rc != 0
    message = run.results[-1]["result"]["msg"]
    assert message == f"1 of 1 allocation failed: {target['ID'][:8]} ({target['Name']}): No cluster leader"
    assert stop_posts(emulator) == {f"POST {path}": 1}
