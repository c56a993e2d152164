# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Signal, restart and stop with real processes (reference §4, §5)."""
from __future__ import annotations

import os
import time
import uuid

import pytest
from conftest import pid_alive

from tests.waiting import wait_until


def web_alloc(api) -> dict:
    return sorted(api.by_job("web"), key=lambda alloc: alloc["Name"])[0]


def read_lines(path: str) -> list:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return handle.read().split()


# --- signal -----------------------------------------------------------------------------------------
def test_signal_one_task_reaches_its_trap(api, fresh_emulator):
    alloc = web_alloc(api)
    response = api.post(f"/v1/client/allocation/{alloc['ID']}/signal", json={"Task": "server", "Signal": "SIGHUP"})
    assert response.status_code == 200
    assert response.json() == {"Index": 0}
    assert "X-Nomad-Index" not in response.headers
    tasks = fresh_emulator.control.tasks(alloc["ID"])
    assert tasks["server"]["signals"] == ["SIGHUP"] and tasks["sidecar"]["signals"] == []
    log = os.path.join(tasks["server"]["task_dir"], "signals.log")
    assert wait_until(lambda: read_lines(log) == ["HUP"], what="the trap to write HUP")


def test_signal_keys_are_case_insensitive_and_put_works(api, fresh_emulator):
    alloc = web_alloc(api)
    response = api.put(f"/v1/client/allocation/{alloc['ID']}/signal", data='{"task": "server", "signal": "SIGUSR1"}')
    assert response.status_code == 200
    log = os.path.join(fresh_emulator.control.tasks(alloc["ID"])["server"]["task_dir"], "signals.log")
    assert wait_until(lambda: "USR1" in read_lines(log), what="USR1")


def test_signal_all_tasks(api, fresh_emulator):
    alloc = web_alloc(api)
    assert api.post(f"/v1/client/allocation/{alloc['ID']}/signal", json={"Signal": "SIGHUP"}).status_code == 200
    tasks = fresh_emulator.control.tasks(alloc["ID"])
    assert tasks["server"]["signals"] == ["SIGHUP"] and tasks["sidecar"]["signals"] == ["SIGHUP"]


def test_unknown_signal_name_falls_back_to_sigint(api, fresh_emulator):
    alloc = web_alloc(api)
    response = api.post(f"/v1/client/allocation/{alloc['ID']}/signal", json={"Task": "server", "Signal": "sighup"})
    assert response.status_code == 200
    assert fresh_emulator.control.tasks(alloc["ID"])["server"]["signals"] == ["SIGINT"]


def test_signal_errors(api, fresh_emulator):
    alloc_id = web_alloc(api)["ID"]
    path = f"/v1/client/allocation/{alloc_id}/signal"
    empty = api.post(path)
    assert (empty.status_code, empty.text) == (400, "Failed to decode body: Request body is empty")
    bad = api.post(path, data="{nope")
    assert bad.status_code == 400
    assert bad.text == "Failed to decode body: invalid character 'n' looking for beginning of object key string"
    wrong_type = api.post(path, data='{"Task": 5}')
    assert wrong_type.status_code == 400
    assert "cannot unmarshal number into Go struct field AllocSignalRequest.Task of type string" in wrong_type.text
    missing_task = api.post(path, json={"Task": "nope", "Signal": "SIGHUP"})
    assert (missing_task.status_code, missing_task.text) == (500, "Task not found")
    get = api.get(path)
    assert (get.status_code, get.text) == (405, "Invalid method")
    unknown = str(uuid.uuid4())
    gone = api.post(f"/v1/client/allocation/{unknown}/signal", json={"Signal": "SIGHUP"})
    assert (gone.status_code, gone.text) == (404, f'Unknown allocation "{unknown}"')
    short = api.post("/v1/client/allocation/abcd/signal", json={"Signal": "SIGHUP"})
    assert (short.status_code, short.text) == (500, "alloc lookup failed: index error: UUID must be 36 characters")


def test_signal_with_a_finished_prestart_task(api):
    alloc = api.by_job("api")[0]
    path = f"/v1/client/allocation/{alloc['ID']}/signal"
    response = api.post(path, json={"Signal": "SIGHUP"})
    assert response.status_code == 500
    assert response.text == "1 error occurred:\n\t* Failed to signal task: migrate, err: Task not running\n\n"
    one = api.post(path, json={"Task": "migrate", "Signal": "SIGHUP"})
    assert (one.status_code, one.text) == (500, "Task not running")


# --- restart ----------------------------------------------------------------------------------------
def test_restart_one_task_gets_a_new_pid(api, fresh_emulator):
    alloc = web_alloc(api)
    before = fresh_emulator.control.tasks(alloc["ID"])
    response = api.post(f"/v1/client/allocation/{alloc['ID']}/restart", json={"TaskName": "server"})
    assert response.status_code == 200 and response.json() == {"Index": 0}
    after = fresh_emulator.control.tasks(alloc["ID"])  # restart blocks until the task runs again
    assert after["server"]["pid"] != before["server"]["pid"] and after["server"]["state"] == "running"
    assert not pid_alive(before["server"]["pid"])
    assert after["sidecar"]["pid"] == before["sidecar"]["pid"]
    state = api.allocation(alloc["ID"])["TaskStates"]["server"]
    assert state["Restarts"] == 1 and state["LastRestart"] != "0001-01-01T00:00:00Z"
    types = [event["Type"] for event in state["Events"]]
    for expected in ("Restart Signaled", "Terminated", "Restarting", "Started"):
        assert expected in types
    assert types.index("Restart Signaled") < types.index("Terminated") < types.index("Restarting") \
        < len(types) - 1 - types[::-1].index("Started")
    assert read_lines(os.path.join(after["server"]["task_dir"], "signals.log")) == ["TERM"]


def test_restart_without_body_restarts_running_tasks(api, fresh_emulator):
    alloc = api.by_job("api")[0]
    before = fresh_emulator.control.tasks(alloc["ID"])
    assert api.get(f"/v1/client/allocation/{alloc['ID']}/restart").status_code == 200  # no method check
    after = fresh_emulator.control.tasks(alloc["ID"])
    assert after["app"]["restarts"] == 1 and after["app"]["pid"] != before["app"]["pid"]
    assert after["migrate"]["restarts"] == 0 and after["migrate"]["state"] == "dead"


def test_restart_all_tasks_reruns_dead_ones(api, fresh_emulator):
    alloc = api.by_job("api")[0]
    response = api.put(f"/v1/client/allocation/{alloc['ID']}/restart", json={"AllTasks": True})
    assert response.status_code == 200
    after = fresh_emulator.control.tasks(alloc["ID"])
    assert after["migrate"]["restarts"] == 1 and after["app"]["restarts"] == 1
    assert after["app"]["state"] == "running"


def test_restart_errors(api):
    alloc = web_alloc(api)
    path = f"/v1/client/allocation/{alloc['ID']}/restart"
    both = api.post(path, json={"TaskName": "server", "AllTasks": True})
    assert (both.status_code, both.text) == (500, "task name cannot be set when restarting all tasks")
    unknown = api.post(path, json={"TaskName": "nope"})
    assert (unknown.status_code, unknown.text) == (500, "Could not find task runner for task: nope")
    malformed = api.post(path, data="[1,")
    assert malformed.status_code == 500 and malformed.text == "unexpected end of JSON input"
    dead = api.post(f"/v1/client/allocation/{api.by_job('api')[0]['ID']}/restart", json={"TaskName": "migrate"})
    assert (dead.status_code, dead.text) == (500, "Task not running")
    gone = str(uuid.uuid4())
    missing = api.post(f"/v1/client/allocation/{gone}/restart")
    assert (missing.status_code, missing.text) == (404, f'Unknown allocation "{gone}"')


def test_restart_of_a_completed_alloc(api):
    report = api.by_job("report")[0]["ID"]
    wait_until(lambda: api.allocation(report)["ClientStatus"] == "complete", what="report to complete")
    response = api.post(f"/v1/client/allocation/{report}/restart")
    assert (response.status_code, response.text) == (500, "restart of an alloc that should not run")


# --- stop -------------------------------------------------------------------------------------------
def test_stop_kills_the_tasks_and_a_replacement_appears(api, fresh_emulator):
    alloc = web_alloc(api)
    pids = {name: task["pid"] for name, task in fresh_emulator.control.tasks(alloc["ID"]).items()}
    response = api.post(f"/v1/allocation/{alloc['ID']}/stop")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"EvalID", "Index"} and body["EvalID"] != alloc["EvalID"]
    assert response.headers["X-Nomad-Index"] == str(body["Index"])
    assert body["Index"] > alloc["ModifyIndex"]
    stopped = wait_until(lambda: (a := api.allocation(alloc["ID"]))["ClientStatus"] == "complete" and a,
                         what="the stopped alloc to complete")
    assert stopped["DesiredStatus"] == "stop"
    assert stopped["DesiredTransition"]["Migrate"] is True
    assert stopped["DesiredTransition"]["NoShutdownDelay"] is False
    assert all(state["State"] == "dead" and not state["Failed"] for state in stopped["TaskStates"].values())
    for pid in pids.values():
        assert wait_until(lambda: not pid_alive(pid), what=f"pid {pid} to exit")
    replacement = api.allocation(stopped["NextAllocation"])
    assert replacement["PreviousAllocation"] == alloc["ID"]
    assert replacement["Name"] == alloc["Name"]
    assert replacement["CreateIndex"] > alloc["CreateIndex"]
    tasks = wait_until(lambda: (t := fresh_emulator.control.tasks(replacement["ID"]))["server"]["pid"] and t,
                       what="the replacement to start")
    assert pid_alive(tasks["server"]["pid"])
    assert api.get(f"/v1/allocation/{alloc['ID']}/services").json() == []


def test_stop_put_no_shutdown_delay_and_batch_jobs_are_not_replaced(emulator_factory):
    """Nomad 1.6.5 (1.10.5 and 1.11.3: test_versions.py, rows 12-15 of the changes reference)."""
    from conftest import Api
    api = Api(emulator_factory(nomad_version="1.6.5"))
    report = api.by_job("report")[0]
    response = api.put(f"/v1/allocation/{report['ID']}/stop", params={"no_shutdown_delay": "true"})
    assert response.status_code == 200
    alloc = api.allocation(report["ID"])
    assert alloc["DesiredTransition"]["NoShutdownDelay"] is True
    assert alloc["DesiredStatus"] == "stop" and alloc["NextAllocation"] == ""
    again = api.post(f"/v1/allocation/{report['ID']}/stop")
    assert again.status_code == 200 and again.json()["EvalID"] != response.json()["EvalID"]
    assert again.json()["Index"] > response.json()["Index"]
    assert len(api.by_job("report")) == 1


def test_stop_errors(api):
    alloc_id = web_alloc(api)["ID"]
    bad_bool = api.post(f"/v1/allocation/{alloc_id}/stop", params={"no_shutdown_delay": "maybe"})
    assert bad_bool.status_code == 500
    assert bad_bool.text == 'no_shutdown_delay value is not a boolean: strconv.ParseBool: parsing "maybe": invalid syntax'
    get = api.get(f"/v1/allocation/{alloc_id}/stop")
    assert (get.status_code, get.text) == (405, "Invalid method")
    missing = api.post(f"/v1/allocation/{uuid.uuid4()}/stop")
    assert (missing.status_code, missing.text) == (404, "allocation not found")
    short = api.post("/v1/allocation/abcd/stop")
    assert (short.status_code, short.text) == (500, "alloc lookup failed: index error: UUID must be 36 characters")
    empty = api.post("/v1/allocation//stop")
    assert (empty.status_code, empty.text) == (500, "Missing allocation ID")


def test_task_that_exits_non_zero_fails_the_alloc(emulator_factory, tmp_path):
    scenario = tmp_path / "failing.yml"
    scenario.write_text(
        "jobs:\n"
        "  - id: flaky\n"
        "    type: batch\n"
        "    groups:\n"
        "      - name: g\n"
        "        tasks:\n"
        "          - name: t\n"
        "            command: ['/bin/sh', '-c', 'sleep 0.2; exit 3']\n")
    emulator = emulator_factory(str(scenario))
    from conftest import Api
    api = Api(emulator)
    alloc_id = api.allocations()[0]["ID"]
    alloc = wait_until(lambda: (a := api.allocation(alloc_id))["ClientStatus"] == "failed" and a, what="failure")
    state = alloc["TaskStates"]["t"]
    assert state["State"] == "dead" and state["Failed"] is True
    assert state["Events"][-1]["Details"]["exit_code"] == "3"


def test_stop_escalates_to_sigkill_after_kill_timeout(emulator_factory, tmp_path):
    scenario = tmp_path / "stubborn.yml"
    scenario.write_text(
        "jobs:\n"
        "  - id: stubborn\n"
        "    type: batch\n"
        "    groups:\n"
        "      - name: g\n"
        "        tasks:\n"
        "          - name: t\n"
        "            kill_timeout: 500ms\n"
        "            command: ['/bin/sh', '-c', 'trap \"\" TERM; while :; do sleep 0.1; done']\n")
    emulator = emulator_factory(str(scenario), nomad_version="1.6.5")   # a stopped batch alloc ends complete
    from conftest import Api
    api = Api(emulator)
    alloc_id = api.allocations()[0]["ID"]
    pid = emulator.control.tasks(alloc_id)["t"]["pid"]
    started = time.monotonic()
    assert api.post(f"/v1/allocation/{alloc_id}/stop").status_code == 200
    wait_until(lambda: not pid_alive(pid), what="SIGKILL")
    assert time.monotonic() - started >= 0.4
    alloc = wait_until(lambda: (a := api.allocation(alloc_id))["ClientStatus"] == "complete" and a, what="complete")
    assert alloc["TaskStates"]["t"]["Events"][-2]["Type"] in ("Terminated", "Killing")


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_sigterm_or_sigint_to_the_emulator_kills_every_task(emulator_factory, signal_name):
    import signal
    emulator = emulator_factory()
    from conftest import Api
    api = Api(emulator)
    pids = [task["pid"] for alloc in api.allocations() for task in emulator.control.tasks(alloc["ID"]).values()
            if task["pid"]]
    assert pids
    emulator.process.send_signal(getattr(signal, signal_name))
    assert emulator.process.wait(timeout=15) == 0
    for pid in pids:
        assert wait_until(lambda: not pid_alive(pid), timeout=5, what=f"pid {pid} to be gone")


def test_unhealthy_task_keeps_deployment_status_unset(emulator_factory, tmp_path):
    scenario = tmp_path / "unhealthy.yml"
    scenario.write_text(
        "jobs:\n  - id: sick\n    type: service\n    groups:\n      - name: g\n        count: 1\n        tasks:\n"
        "          - name: t\n            healthy: false\n"
        "            command: ['/bin/sh', '-c', 'trap \"exit 0\" TERM; while :; do sleep 1; done']\n"
        "  - id: fine\n    type: service\n    groups:\n      - name: g\n        tasks:\n          - name: t\n")
    from conftest import Api
    api = Api(emulator_factory(str(scenario)))
    fine = api.by_job("fine")[0]["ID"]
    wait_until(lambda: api.allocation(fine)["DeploymentStatus"], what="the healthy job")
    time.sleep(0.5)
    sick = api.by_job("sick")[0]
    assert sick["ClientStatus"] == "running" and sick["DeploymentStatus"] is None


def test_concurrent_restarts_leave_one_process(api, fresh_emulator):
    import threading
    alloc = web_alloc(api)
    path = f"/v1/client/allocation/{alloc['ID']}/restart"
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(api.post(path, json={"TaskName": "server"})))
               for _thread in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # a request that arrives while the task is between kill and start gets Nomad's "Task not running"
    succeeded = [answer for answer in answers if answer.status_code == 200]
    assert succeeded
    assert all(answer.text == "Task not running" for answer in answers if answer.status_code != 200)
    task = fresh_emulator.control.tasks(alloc["ID"])["server"]
    assert task["restarts"] == len(succeeded) and task["state"] == "running" and pid_alive(task["pid"])
    state = api.allocation(alloc["ID"])["TaskStates"]["server"]
    assert state["Restarts"] == len(succeeded) and len(state["Events"]) <= 10  # Nomad keeps the last 10 events
