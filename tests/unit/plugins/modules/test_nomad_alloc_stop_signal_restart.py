# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_alloc_stop / _signal / _restart run in-process against a fake Nomad on loopback."""

from __future__ import annotations

import json

import pytest


from ansible_collections.nomadops.nomad.plugins.modules import (
    nomad_alloc_restart,
    nomad_alloc_signal,
    nomad_alloc_stop,
)
from ansible_collections.nomadops.nomad.tests.unit.plugins.module_utils.fake_nomad_server import (
    FakeNomad,
    Reply,
    json_reply,
)

RUNNING = "aaaaaaaa-0000-4000-8000-000000000001"
STOPPED = "bbbbbbbb-0000-4000-8000-000000000002"
BROKEN = "cccccccc-0000-4000-8000-000000000003"


def stub(alloc_id, index, client_status="running", desired="run"):
    return {"ID": alloc_id, "Name": f"web.frontend[{index}]", "JobID": "web", "Namespace": "prod",
            "TaskGroup": "frontend", "ClientStatus": client_status, "DesiredStatus": desired}


STUBS = [stub(RUNNING, 0), stub(STOPPED, 1, "complete", "stop"), stub(BROKEN, 2)]


def full(alloc):
    return dict(alloc, TaskStates={"init": {"State": "dead"}, "server": {"State": "running", "Restarts": 0}},
                Job={"TaskGroups": [{"Name": "frontend", "Tasks": [
                    {"Name": "init", "Lifecycle": {"Hook": "prestart", "Sidecar": False}}, {"Name": "server"}]}]})


def nomad_like(request):
    if request.path == "/v1/allocations":
        return json_reply(STUBS, index=40)
    for alloc in STUBS:
        base = f"/v1/allocation/{alloc['ID']}"
        client_base = f"/v1/client/allocation/{alloc['ID']}"
        if request.path == base:
            return json_reply(full(alloc), index=41)
        if alloc["ID"] == BROKEN and request.method != "GET":
            return Reply(500, "rpc error: No cluster leader")
        if request.path == base + "/stop":
            return json_reply({"EvalID": "eval-" + alloc["ID"][:4], "Index": 42}, index=42)
        if request.path in (client_base + "/signal", client_base + "/restart"):
            return json_reply({"Index": 0})
    return Reply(404, "resource not found")


def mutations(nomad):
    return [(r.method, r.path, r.query, json.loads(r.body) if r.body else None)
            for r in nomad.requests if r.method != "GET"]


def test_stop_skips_the_stopped_allocation_and_lists_the_failure(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_stop, {"address": nomad.address, "job": "web", "namespace": "prod",
                                               "no_shutdown_delay": True})

    assert result["_rc"] == 1 and result["changed"] is True
    assert result["msg"] == "1 of 3 allocations failed: cccccccc (web.frontend[2]): rpc error: No cluster leader"
    assert [(a["ID"], a["changed"]) for a in result["allocations"]] == [(RUNNING, True), (STOPPED, False),
                                                                        (BROKEN, False)]
    assert result["allocations"][1]["skipped_reason"] == "already stopping or stopped (DesiredStatus stop)"
    assert result["evaluation_ids"] == ["eval-aaaa"]
    assert sorted(mutations(nomad)) == [
        ("POST", f"/v1/allocation/{RUNNING}/stop", {"namespace": "prod", "no_shutdown_delay": "true"}, None),
        ("POST", f"/v1/allocation/{BROKEN}/stop", {"namespace": "prod", "no_shutdown_delay": "true"}, None),
    ]


def test_stop_check_mode_sends_no_stop(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_stop, {"address": nomad.address, "job": "web"}, check_mode=True)

    assert result["_rc"] == 0 and result["changed"] is True
    assert [a["changed"] for a in result["allocations"]] == [True, False, True]
    assert result["evaluation_ids"] == [] and mutations(nomad) == []


@pytest.mark.parametrize("module, args, message", [
    (nomad_alloc_stop, {}, "refusing to act on every allocation in the namespace"),
    (nomad_alloc_signal, {"signal": "HUP"}, "refusing to act on every allocation in the namespace"),
    (nomad_alloc_restart, {"job": "web", "parallelism": 0}, "parallelism must be at least 1, got 0"),
    (nomad_alloc_signal, {"job": "web", "signal": "SIGNOPE"}, "unknown signal 'SIGNOPE'; use one of the POSIX"),
    (nomad_alloc_restart, {"job": "web", "task": "server", "all_tasks": True},
     "task and all_tasks are mutually exclusive"),
])
def test_bad_input_fails_before_any_request(run_module, module, args, message):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(module, dict(args, address=nomad.address))

    assert result["_rc"] == 1 and result["msg"].startswith(message)
    assert nomad.requests == []


def test_signal_without_task_sends_one_request_per_running_task(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_signal, {"address": nomad.address, "id": [RUNNING], "signal": "term"})

    assert result["_rc"] == 0 and result["signal"] == "SIGTERM"
    assert result["allocations"][0]["tasks"] == ["server"]
    assert mutations(nomad) == [("POST", f"/v1/client/allocation/{RUNNING}/signal", {"namespace": "prod"},
                                 {"Task": "server", "Signal": "SIGTERM"})]


def test_restart_all_tasks_body(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_restart, {"address": nomad.address, "id": [RUNNING], "all_tasks": True})

    assert result["_rc"] == 0 and result["allocations"][0]["tasks"] == ["init", "server"]
    assert mutations(nomad) == [("POST", f"/v1/client/allocation/{RUNNING}/restart", {"namespace": "prod"},
                                 {"AllTasks": True})]


def test_restart_explicit_all_tasks_false_with_a_task_is_fine(run_module):
    with FakeNomad(nomad_like) as nomad:
        result = run_module(nomad_alloc_restart, {"address": nomad.address, "id": [RUNNING], "task": "server",
                                                  "all_tasks": False})

    assert result["_rc"] == 0
    assert [m[3] for m in mutations(nomad)] == [{"TaskName": "server"}]


@pytest.mark.parametrize("module, args", [
    (nomad_alloc_stop, {}),
    (nomad_alloc_signal, {"signal": "HUP"}),
    (nomad_alloc_restart, {}),
])
def test_a_selector_matching_nothing_changes_nothing(run_module, module, args):
    # The fake answers 200 everywhere: namespace and job exist, so the empty selection is fine (and says so).
    with FakeNomad(lambda request: json_reply([], index=5)) as nomad:
        result = run_module(module, dict(args, address=nomad.address, job="nope"))

    assert result["_rc"] == 0 and result["changed"] is False and result["allocations"] == []
    assert result["msg"] == 'no allocation matched the selector (filter: JobID == "nope"); nothing to do'
    assert [r.path for r in nomad.requests] == ["/v1/allocations", "/v1/namespace/default", "/v1/job/nope"]


@pytest.mark.parametrize("module, args", [
    (nomad_alloc_stop, {}),
    (nomad_alloc_signal, {"signal": "HUP"}),
    (nomad_alloc_restart, {}),
])
def test_a_missing_job_fails_naming_it_and_the_address(run_module, module, args):
    def answer(request):
        if request.path.startswith("/v1/job/"):
            return Reply(status=404, body="job not found")
        return json_reply([], index=5)

    with FakeNomad(answer) as nomad:
        result = run_module(module, dict(args, address=nomad.address, job="wbe"))

    assert result["failed"] is True
    assert result["msg"] == f'job "wbe" not found in namespace "default" at {nomad.address}'
    assert not [r for r in nomad.requests if r.method == "POST"]
