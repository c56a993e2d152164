# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Per-allocation stop/signal/restart, the waits and the result shaping, against a fake HTTP layer."""

from __future__ import annotations

import copy
import threading

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import results as action_results
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import facts as alloc_facts
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations import lifecycle
from ansible_collections.nomadops.nomad.plugins.module_utils.allocations.reads import wait_for_terminal
from ansible_collections.nomadops.nomad.plugins.module_utils.common.errors import (
    NomadPermissionDeniedError,
    NomadServerError,
)

ALLOC_ID = "8d1c3f2a-0000-4000-8000-000000000001"


class FakeResponse:
    def __init__(self, data, index=1):
        self.data = data
        self.index = index
        self.status = 200


class InMemoryClient:
    """Stands in for NomadClient (not for Nomad): answers reads from a dict of allocations, records every write,
    can fail chosen writes."""

    def __init__(self, *allocs):
        self.allocs = {alloc["ID"]: copy.deepcopy(alloc) for alloc in allocs}
        self.writes = []
        self.reads = []
        self.failures = {}  # (method, path, task) -> exception
        self.after_blocking = []  # callables applied to the state on each blocking read
        self.index = 10
        self._lock = threading.Lock()

    def read(self, path, params=None):
        with self._lock:
            self.reads.append((path, dict(params or {})))
        return self._answer(path, params)

    def blocking_read(self, path, params, index, wait):
        with self._lock:
            self.reads.append((path, dict(params or {}), index, wait))
            if self.after_blocking:
                self.after_blocking.pop(0)(self.allocs)
                self.index += 1
        return self._answer(path, params)

    def paginate(self, path, params=None, per_page=None, limit=None, on_response=None):
        response = self.read(path, params)
        if on_response is not None:
            on_response(response)
        return iter(response.data)

    def _answer(self, path, params):
        if path == "/v1/allocations":
            return FakeResponse([copy.deepcopy(alloc) for alloc in self.allocs.values()], self.index)
        alloc_id = path.rsplit("/", 1)[1]
        return FakeResponse(copy.deepcopy(self.allocs[alloc_id]), self.index)

    def write(self, method, path, params=None, body=None):
        with self._lock:
            self.writes.append((method, path, dict(params or {}), body))
        failure = self.failures.get((method, path, (body or {}).get("Task")))
        if failure:
            raise failure
        if path.endswith("/stop"):
            return FakeResponse({"EvalID": "eval-1", "Index": 11})
        return FakeResponse({"Index": 0})


def allocation(alloc_id=ALLOC_ID, name="web.frontend[1]", client_status="running", desired="run", states=None,
               tasks=("server",), prestart=()):
    states = states if states is not None else {task: "running" for task in tasks}
    return {
        "ID": alloc_id,
        "Name": name,
        "JobID": "web",
        "Namespace": "default",
        "TaskGroup": "frontend",
        "DesiredStatus": desired,
        "ClientStatus": client_status,
        "TaskStates": {task: {"State": state, "Restarts": 0, "LastRestart": None} for task, state in states.items()},
        "Job": {
            "TaskGroups": [
                {
                    "Name": "frontend",
                    "Tasks": [
                        {"Name": task, "Lifecycle": {"Hook": "prestart", "Sidecar": False} if task in prestart else None}
                        for task in tasks
                    ],
                }
            ]
        },
    }


def server_error(message):
    return NomadServerError(message)


# --- stop -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "desired, client_status, reason",
    [
        ("stop", "running", "DesiredStatus stop"),
        ("evict", "running", "DesiredStatus evict"),
        ("run", "complete", "ClientStatus complete"),
        ("run", "failed", "ClientStatus failed"),
        ("run", "lost", "ClientStatus lost"),
    ],
)
def test_stop_skips_allocations_that_are_already_stopped(desired, client_status, reason):
    nomad = InMemoryClient()
    fields = lifecycle.stop_allocation(nomad, allocation(desired=desired, client_status=client_status))
    assert fields["changed"] is False
    assert reason in fields["skipped_reason"]
    assert nomad.writes == []


def test_stop_sends_one_post_with_namespace_and_no_shutdown_delay():
    nomad = InMemoryClient()
    fields = lifecycle.stop_allocation(nomad, allocation(), no_shutdown_delay=True)
    assert fields == {"changed": True, "EvalID": "eval-1"}
    assert nomad.writes == [
        ("POST", f"/v1/allocation/{ALLOC_ID}/stop", {"namespace": "default", "no_shutdown_delay": "true"},
         None)
    ]


def test_stop_of_a_batch_allocation_asks_for_reschedule_like_the_nomad_1_11_cli():
    nomad = InMemoryClient()
    lifecycle.stop_allocation(nomad, dict(allocation(), JobType="batch"))
    lifecycle.stop_allocation(nomad, dict(allocation(), JobType="service"))
    assert [params for _method, _path, params, _body in nomad.writes] == [
        {"namespace": "default", "reschedule": "true"}, {"namespace": "default"}]


def test_stop_in_check_mode_predicts_without_writing():
    nomad = InMemoryClient()
    assert lifecycle.stop_allocation(nomad, allocation(), check_mode=True) == {"changed": True, "EvalID": None}
    assert nomad.writes == []


# --- signal -----------------------------------------------------------------------------------------


def test_signal_without_task_signals_only_the_running_tasks_one_by_one():
    alloc = allocation(tasks=("init", "server", "logs"), prestart=("init",),
                       states={"init": "dead", "server": "running", "logs": "running"})
    nomad = InMemoryClient(alloc)

    fields = lifecycle.signal_allocation(nomad, alloc, "SIGHUP")

    assert fields == {"changed": True, "tasks": ["server", "logs"]}
    assert [write[3] for write in nomad.writes] == [
        {"Task": "server", "Signal": "SIGHUP"},
        {"Task": "logs", "Signal": "SIGHUP"},
    ]
    assert {write[1] for write in nomad.writes} == {f"/v1/client/allocation/{ALLOC_ID}/signal"}


def test_signal_with_an_unknown_task_names_the_valid_tasks_and_sends_nothing():
    alloc = allocation(tasks=("server", "logs"))
    nomad = InMemoryClient(alloc)
    with pytest.raises(lifecycle.LifecycleError, match=r"task 'nope' is not in this allocation; its tasks are: server, logs"):
        lifecycle.signal_allocation(nomad, alloc, "SIGHUP", task="nope")
    assert nomad.writes == []


def test_signal_to_a_dead_task_is_refused_before_sending():
    alloc = allocation(tasks=("init", "server"), states={"init": "dead", "server": "running"})
    nomad = InMemoryClient(alloc)
    with pytest.raises(lifecycle.LifecycleError, match=r"task 'init' is not running \(state dead\)"):
        lifecycle.signal_allocation(nomad, alloc, "SIGHUP", task="init")
    assert nomad.writes == []


def test_signal_with_no_running_task_lists_the_states():
    alloc = allocation(tasks=("server",), states={"server": "pending"})
    nomad = InMemoryClient(alloc)
    with pytest.raises(lifecycle.LifecycleError, match=r"no running task to signal; its tasks are: server \(pending\)"):
        lifecycle.signal_allocation(nomad, alloc, "SIGHUP")


def test_signal_reads_the_full_allocation_so_a_stub_without_states_is_enough():
    alloc = allocation(tasks=("server",))
    stub_keys = ("ID", "Name", "JobID", "Namespace", "TaskGroup", "DesiredStatus", "ClientStatus")
    stub = {key: alloc[key] for key in stub_keys}
    nomad = InMemoryClient(alloc)
    assert lifecycle.signal_allocation(nomad, stub, "SIGUSR1")["tasks"] == ["server"]
    assert nomad.reads[0] == (f"/v1/allocation/{ALLOC_ID}", {"namespace": "default"})


def test_signal_skips_a_terminal_allocation():
    nomad = InMemoryClient()
    fields = lifecycle.signal_allocation(nomad, allocation(client_status="complete"), "SIGHUP")
    assert fields["changed"] is False and "terminal" in fields["skipped_reason"]
    assert nomad.writes == [] and nomad.reads == []


def test_signal_failure_after_a_first_task_keeps_what_was_signalled():
    alloc = allocation(tasks=("server", "logs"))
    nomad = InMemoryClient(alloc)
    path = f"/v1/client/allocation/{ALLOC_ID}/signal"
    nomad.failures[("POST", path, "logs")] = server_error("Task not running")

    with pytest.raises(lifecycle.LifecycleError) as caught:
        lifecycle.signal_allocation(nomad, alloc, "SIGHUP")

    assert caught.value.partial == {"changed": True, "tasks": ["server"]}
    assert str(caught.value).startswith("task 'logs': ")
    assert "Task not running" in str(caught.value)


def test_signal_permission_denied_is_not_blamed_on_a_task():
    alloc = allocation(tasks=("server", "logs"))
    nomad = InMemoryClient(alloc)
    path = f"/v1/client/allocation/{ALLOC_ID}/signal"
    nomad.failures[("POST", path, "server")] = NomadPermissionDeniedError("Permission denied", status=403,
                                                                          nomad_message="Permission denied")

    with pytest.raises(lifecycle.LifecycleError) as caught:
        lifecycle.signal_allocation(nomad, alloc, "SIGHUP")

    assert str(caught.value) == (
        "Permission denied: the token needs the alloc-lifecycle capability in namespace 'default'"
    )
    assert caught.value.partial == {"changed": False, "tasks": []}
    assert len(nomad.writes) == 1  # the first refusal ends this allocation


def test_signal_in_check_mode_validates_but_sends_nothing():
    alloc = allocation(tasks=("server",))
    nomad = InMemoryClient(alloc)
    fields = lifecycle.signal_allocation(nomad, alloc, "SIGHUP", check_mode=True)
    assert fields == {"changed": True, "tasks": ["server"]}
    assert nomad.writes == []


# --- restart ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, body, tasks",
    [
        ({"task": "server"}, {"TaskName": "server"}, ["server"]),
        ({"all_tasks": True}, {"AllTasks": True}, ["init", "server"]),
        ({}, {}, ["server"]),
    ],
)
def test_restart_bodies(options, body, tasks):
    alloc = allocation(tasks=("init", "server"), prestart=("init",), states={"init": "dead", "server": "running"})
    nomad = InMemoryClient(alloc)
    fields = lifecycle.restart_allocation(nomad, alloc, **options)
    assert fields == {"changed": True, "tasks": tasks}
    assert nomad.writes == [("POST", f"/v1/client/allocation/{ALLOC_ID}/restart", {"namespace": "default"},
                             body)]


def test_restart_wait_blocks_until_the_task_counts_a_new_restart():
    alloc = allocation(tasks=("server",))
    nomad = InMemoryClient(alloc)

    def pending(allocs):
        allocs[ALLOC_ID]["TaskStates"]["server"]["State"] = "pending"

    def running_again(allocs):
        allocs[ALLOC_ID]["TaskStates"]["server"].update(State="running", Restarts=1, LastRestart="2026-11-27T00:00:01Z")

    nomad.after_blocking = [pending, running_again]

    fields = lifecycle.restart_allocation(nomad, alloc, task="server", wait=True, wait_timeout=30)

    # the allocation as the wait last saw it goes to finish_action (summary, diff), never into the result
    observed = fields.pop(action_results.OBSERVED)
    assert observed["TaskStates"]["server"]["Restarts"] == 1
    assert fields == {"changed": True, "tasks": ["server"]}
    blocking = [read for read in nomad.reads if len(read) == 4]
    assert len(blocking) == 2
    assert all(0 < read[3] <= 30 for read in blocking)


def test_restart_wait_ignores_a_prestart_task_that_ran_to_completion():
    alloc = allocation(tasks=("init", "server"), prestart=("init",), states={"init": "dead", "server": "running"})
    nomad = InMemoryClient(alloc)

    def running_again(allocs):
        allocs[ALLOC_ID]["TaskStates"]["server"].update(Restarts=1)

    nomad.after_blocking = [running_again]
    assert lifecycle.restart_allocation(nomad, alloc, all_tasks=True, wait=True, wait_timeout=30)["changed"]


@pytest.mark.parametrize("lifecycle_spec, runs_once", [
    (None, False),
    ({"Hook": "prestart", "Sidecar": False}, True),
    ({"Hook": "prestart", "Sidecar": True}, False),
    ({"Hook": "poststart", "Sidecar": False}, True),
    ({"Hook": "poststop", "Sidecar": False}, True),
])
def test_tasks_that_run_once_are_not_waited_for(lifecycle_spec, runs_once):
    alloc = allocation(tasks=("hooked",))
    alloc["Job"]["TaskGroups"][0]["Tasks"][0]["Lifecycle"] = lifecycle_spec
    assert alloc_facts.runs_once(alloc, "hooked") is runs_once


def test_restart_wait_timeout_reports_the_tasks_and_that_the_restart_happened():
    alloc = allocation(tasks=("server",))
    nomad = InMemoryClient(alloc)
    with pytest.raises(lifecycle.LifecycleError, match="did not run again within 0s") as caught:
        lifecycle.restart_allocation(nomad, alloc, task="server", wait=True, wait_timeout=0)
    assert caught.value.partial == {"changed": True, "tasks": ["server"]}
    assert len(nomad.writes) == 1


# --- waiting for stopped allocations ----------------------------------------------------------------


def test_stop_wait_uses_blocking_list_queries_filtered_by_id():
    first, second = allocation("a" * 8 + ALLOC_ID[8:]), allocation("b" * 8 + ALLOC_ID[8:], name="web.frontend[2]")
    nomad = InMemoryClient(first, second)
    nomad.after_blocking = [
        lambda allocs: allocs[first["ID"]].update(ClientStatus="complete"),
        lambda allocs: allocs.pop(second["ID"]),  # garbage-collected counts as gone
    ]

    assert wait_for_terminal(nomad, [first, second], timeout=30) == []

    path, params = nomad.reads[0]
    assert path == "/v1/allocations"
    assert params == {"namespace": "default", "task_states": False,
                      "filter": f'(ID == "{first["ID"]}" or ID == "{second["ID"]}")'}
    blocking = [read for read in nomad.reads if len(read) == 4]
    assert [read[2] for read in blocking] == [10, 11]
    assert all(read[1]["per_page"] == 1 for read in blocking)


def test_stop_wait_for_many_allocations_filters_by_job_and_keeps_only_their_ids():
    """An ID filter of hundreds of clauses would make a request line proxies refuse (nginx: 8 KiB)."""
    allocs = [allocation(f"{number:08x}" + ALLOC_ID[8:], name=f"web.frontend[{number}]") for number in range(100)]
    bystander = dict(allocation("f" * 8 + ALLOC_ID[8:]), ClientStatus="running")
    nomad = InMemoryClient(*allocs, bystander)
    nomad.after_blocking = [lambda listed: [alloc.update(ClientStatus="complete") for alloc in listed.values()
                                            if alloc["ID"] != bystander["ID"]]]

    assert wait_for_terminal(nomad, allocs, timeout=30) == []

    assert nomad.reads[0][1]["filter"] == '(JobID == "web")'
    assert all(len(read[1].get("filter", "")) < 1024 for read in nomad.reads)


def test_stop_wait_returns_the_allocations_still_running_at_the_deadline():
    alloc = allocation()
    nomad = InMemoryClient(alloc)
    assert wait_for_terminal(nomad, [alloc], timeout=0) == [ALLOC_ID]


def test_stop_wait_across_namespaces_lists_every_namespace():
    allocs = [dict(allocation(), Namespace="prod"), dict(allocation("c" * 8 + ALLOC_ID[8:]), Namespace="default")]
    nomad = InMemoryClient(*allocs)
    wait_for_terminal(nomad, allocs, timeout=0)
    assert nomad.reads[0][1]["namespace"] == "*"


def test_restart_wait_for_healthy_waits_for_the_checks_and_names_the_failing_one():
    alloc = allocation(tasks=("server",))
    nomad = InMemoryClient(alloc)
    checks = {"c1": {"Check": "ready", "Status": "failure", "Output": "no healthy file", "Timestamp": 4102444800}}
    answer = nomad._answer
    nomad._answer = lambda path, params: FakeResponse(checks) if path.endswith("/checks") else answer(path, params)
    nomad.after_blocking = [lambda allocs: allocs[ALLOC_ID]["TaskStates"]["server"].update(Restarts=1)] * 3
    with pytest.raises(lifecycle.LifecycleError) as caught:
        lifecycle.restart_allocation(nomad, alloc, task="server", wait="healthy", wait_timeout=1)
    assert str(caught.value) == 'restarted, but not healthy within 1s: check "ready" failure: no healthy file'
    assert (f"/v1/allocation/{ALLOC_ID}/checks", {"namespace": "default"}) in nomad.reads
    checks["c1"].update(Status="success", Output="ready")
    assert lifecycle.restart_allocation(nomad, alloc, task="server", wait="healthy", wait_timeout=5)["changed"]


# --- input checks and shaping -----------------------------------------------------------------------


def test_empty_selector_is_refused_in_one_line():
    message = lifecycle.empty_selector_message({"id": [], "job": None, "filter": "", "client_status": None})
    assert message.startswith("refusing to act on every allocation")
    assert "\n" not in message
    assert lifecycle.empty_selector_message({"job": "web"}) is None
    assert lifecycle.empty_selector_message({"id": ["8d1c"]}) is None
    assert lifecycle.empty_selector_message({"id": [""], "filter": "   "}) is not None


def test_input_problem_reports_the_first_problem_only():
    assert lifecycle.input_problem({"job": "web", "parallelism": 0, "wait_timeout": -1}) == (
        "parallelism must be at least 1, got 0"
    )
    assert lifecycle.input_problem({"job": "web", "parallelism": 2, "wait_timeout": -1}) == (
        "wait_timeout must be 0 or more seconds, got -1"
    )
    assert lifecycle.input_problem({"job": "web", "parallelism": 2, "wait_timeout": 0}) is None


def test_parallelism_message():
    assert lifecycle.parallelism_message(0) == "parallelism must be at least 1, got 0"
    assert lifecycle.parallelism_message(1) is None


def outcome(alloc, value=None, error=None):
    return lifecycle.BulkOutcome(alloc, value=value, error=error)


def test_shape_results_and_failure_message_list_every_failure_once():
    allocs = [allocation(f"{n}{ALLOC_ID[1:]}", name=f"web.frontend[{n}]") for n in range(4)]
    outcomes = [
        outcome(allocs[0], value={"changed": True, "EvalID": "e0"}),
        outcome(allocs[1], error=lifecycle.LifecycleError("Task not running")),
        outcome(allocs[2], error=NomadPermissionDeniedError("Permission denied")),
        outcome(allocs[3], error=lifecycle.LifecycleError("Task not running", partial={"tasks": []})),
    ]

    results = action_results.shape_results(outcomes)

    assert [entry["ID"] for entry in results] == [alloc["ID"] for alloc in allocs]
    assert results[0] == {"ID": allocs[0]["ID"], "Name": "web.frontend[0]", "JobID": "web", "Namespace": "default",
                          "TaskGroup": "frontend", "changed": True, "EvalID": "e0"}
    assert results[1]["changed"] is False and results[1]["error"] == "Task not running"
    assert results[3]["tasks"] == []
    assert results[2]["error"].startswith("Permission denied: the token needs the alloc-lifecycle capability")
    assert action_results.failure_message(results) == (
        "3 of 4 allocations failed: 1d1c3f2a (web.frontend[1]), 3d1c3f2a (web.frontend[3]): Task not running; "
        "2d1c3f2a (web.frontend[2]): Permission denied: the token needs the alloc-lifecycle capability in "
        "namespace 'default'"
    )
    assert action_results.any_changed(results) is True


def test_no_failure_no_message():
    results = action_results.shape_results([outcome(allocation(), value={"changed": False, "skipped_reason": "x"})])
    assert action_results.failure_message(results) is None
    assert action_results.any_changed(results) is False


def test_error_text_is_flattened_to_one_line():
    error = NomadServerError("1 error occurred:\n\t* Failed to signal task: init, err: Task not running\n\n")
    assert action_results.describe_error(error, allocation()) == (
        "1 error occurred: * Failed to signal task: init, err: Task not running"
    )
