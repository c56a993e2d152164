# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_signal against the emulator: real processes receive (or do not receive) the signal."""

from __future__ import annotations

from pathlib import Path


from tests.integration.observe import running_allocations
from tests.waiting import wait_until

SIGNAL_MODULE = "nomadops.nomad.nomad_alloc_signal"


def allocations_of(emulator, job, namespace="*"):
    return sorted((a for a in emulator.allocations(namespace) if a["JobID"] == job), key=lambda a: a["Name"])


def signals_log(tasks, task):
    path = Path(tasks[task]["task_dir"]) / "signals.log"
    return path.read_text().split() if path.exists() else []


def signal_posts(emulator):
    return {path: count for path, count in emulator.control.requests().items() if path.endswith("/signal")}


def test_playbook_signal_reaches_every_server_process(emulator, ansible_runner):
    before = {a["ID"]: emulator.control.tasks(a["ID"]) for a in running_allocations(emulator, "web")}

    run = ansible_runner.playbook("lifecycle_signal.yml").assert_ok()

    assert run.statuses()[-1] == ("Every allocation reports the server task as signalled", "ok")
    for alloc_id, tasks in before.items():
        after = wait_until(lambda: "HUP" in signals_log(emulator.control.tasks(alloc_id), "server")
                           and emulator.control.tasks(alloc_id), what="the HUP trap")
        assert after["server"]["signals"][-1] == "SIGHUP"
        assert after["server"]["pid"] == tasks["server"]["pid"]  # trapped, still the same process
        assert after["sidecar"]["signals"] == tasks["sidecar"]["signals"]  # task given: sidecar untouched


def test_adhoc_command_line_normalises_the_signal_name(emulator, ansible_runner):
    target = running_allocations(emulator, "web")[0]

    run = ansible_runner.adhoc(SIGNAL_MODULE, f"id={target['ID'][:8]} task=server signal=usr1").assert_ok()

    assert "CHANGED" in run.stdout
    result = run.results[-1]["result"]
    assert result["signal"] == "SIGUSR1"
    assert [(a["ID"], a["tasks"], a["changed"]) for a in result["allocations"]] == [(target["ID"], ["server"], True)]
    wait_until(lambda: "USR1" in signals_log(emulator.control.tasks(target["ID"]), "server"), what="the USR1 trap")


def test_without_task_only_running_tasks_are_signalled(emulator, ansible_runner):
    # api has a prestart task that ran and exited; Nomad itself would fail the whole request (nomad#28105).
    api = running_allocations(emulator, "api")[0]
    before = emulator.control.tasks(api["ID"])
    assert before["migrate"]["state"] == "dead" and before["app"]["state"] == "running"
    emulator.control.reset_requests()

    run = ansible_runner.adhoc(SIGNAL_MODULE, {"job": "api", "signal": "WINCH"}).assert_ok()

    result = run.results[-1]["result"]
    assert result["changed"] is True
    assert [a["tasks"] for a in result["allocations"]] == [["app"]]
    after = emulator.control.tasks(api["ID"])
    assert after["app"]["signals"] == before["app"]["signals"] + ["SIGWINCH"]
    assert after["app"]["pid"] == before["app"]["pid"] and after["app"]["state"] == "running"
    assert after["migrate"]["signals"] == before["migrate"]["signals"]
    assert signal_posts(emulator) == {f"POST /v1/client/allocation/{api['ID']}/signal": 1}


def test_check_mode_validates_but_sends_no_signal(emulator, ansible_runner):
    allocs = running_allocations(emulator, "web")
    before = {a["ID"]: emulator.control.tasks(a["ID"]) for a in allocs}
    emulator.control.reset_requests()

    run = ansible_runner.adhoc(SIGNAL_MODULE, "job=web client_status=running task=server signal=SIGTERM",
                               check=True).assert_ok()

    result = run.results[-1]["result"]
    assert result["changed"] is True
    assert sorted(a["ID"] for a in result["allocations"]) == sorted(before)
    assert all(a["tasks"] == ["server"] for a in result["allocations"])
    assert signal_posts(emulator) == {}
    for alloc_id, tasks in before.items():
        assert emulator.control.tasks(alloc_id) == tasks


def test_terminal_allocations_are_skipped(emulator, ansible_runner):
    wait_until(lambda: [a for a in allocations_of(emulator, "report") if a["ClientStatus"] == "complete"],
               what="the batch job to complete")
    emulator.control.reset_requests()

    run = ansible_runner.adhoc(SIGNAL_MODULE, "job=report signal=HUP").assert_ok()

    result = run.results[-1]["result"]
    assert result["changed"] is False
    assert "terminal (ClientStatus complete)" in result["allocations"][0]["skipped_reason"]
    assert signal_posts(emulator) == {}


def test_a_dropped_signal_request_is_not_resent(emulator, ansible_runner):
    first, second = running_allocations(emulator, "web")[:2]
    path = f"/v1/client/allocation/{first['ID']}/signal"
    before = {a["ID"]: emulator.control.tasks(a["ID"])["server"]["signals"] for a in (first, second)}
    emulator.control.reset_requests()
    emulator.control.add_fault(method="POST", path=f"^{path}$", count=1, action="drop")
    try:
        run = ansible_runner.adhoc(SIGNAL_MODULE, {"id": [first["ID"], second["ID"]], "task": "server",
                                                   "signal": "SIGUSR1", "retries": 5})
    finally:
        emulator.control.clear_faults()

    assert run.rc != 0
    result = run.results[-1]["result"]
    assert result["msg"].startswith(f"1 of 2 allocations failed: {first['ID'][:8]} ({first['Name']}): POST {path} ")
    assert "the request may or may not have been applied" in result["msg"]
    assert [(a["changed"], a["tasks"]) for a in result["allocations"]] == [(False, []), (True, ["server"])]
    assert signal_posts(emulator) == {f"POST {path}": 1, f"POST /v1/client/allocation/{second['ID']}/signal": 1}
    after = emulator.control.tasks(second["ID"])["server"]["signals"]
    assert after == before[second["ID"]] + ["SIGUSR1"]
