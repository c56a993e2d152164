# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of nomad_job: HCL variable values, the input format, check-and-set, preserved counts, the plan as
`nomad job plan` prints it (reference nomad-jobs-behaviour.md §3.6), placement failures and deployment verdicts."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.nomadops.nomad.plugins.module_utils.jobs import spec as _jobs
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec import (
    JobRequest,
    JobSpecError,
    hcl_value,
    job_from_json,
    job_namespace,
    nomad_warnings,
    refuse_index_conflict,
    source_format,
    variable_assignments,
    variables_needing_pygohcl,
    with_preserved_counts,
)
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.plan_render import metric_lines, render_plan
from ansible_collections.nomadops.nomad.plugins.module_utils.jobs.rollout import (
    Progress,
    RolloutFailed,
    deployment_judge,
    first_reason,
    placement_failure,
    requires_promotion,
    version_judge,
    watch_registration,
    watch_stopped,
)

# The example of reference §3.4: count 1 -> 3 and an image change.
EXAMPLE_PLAN = {
    "Diff": {"Type": "Edited", "ID": "example", "Fields": None, "Objects": None, "TaskGroups": [
        {"Type": "Edited", "Name": "web",
         "Fields": [{"Type": "Edited", "Name": "Count", "Old": "1", "New": "3", "Annotations": ["forces create"]}],
         "Objects": None,
         "Tasks": [{"Type": "Edited", "Name": "server", "Fields": None, "Objects": [
             {"Type": "Edited", "Name": "Config", "Fields": [
                 {"Type": "Edited", "Name": "image", "Old": "nginx:1.24", "New": "nginx:1.25", "Annotations": None},
                 {"Type": "None", "Name": "ports[0]", "Old": "http", "New": "http", "Annotations": None}],
              "Objects": None}],
             "Annotations": ["forces create/destroy update"]}],
         "Updates": {"create": 2, "create/destroy update": 1}}]},
    "FailedTGAllocs": None,
    "JobModifyIndex": 42,
    "Warnings": "",
}


def test_the_plan_renders_like_nomad_job_plan():
    text = render_plan(EXAMPLE_PLAN, "example")
    assert text.splitlines()[:10] == [
        '+/- Job: "example"',
        '+/- Task Group: "web" (2 create, 1 create/destroy update)',
        '  +/- Count: "1" => "3" (forces create)',
        '  +/- Task: "server" (forces create/destroy update)',
        "    +/- Config {",
        '      +/- image:    "nginx:1.24" => "nginx:1.25"',
        '          ports[0]: "http"',
        "        }",
        "",
        "Scheduler dry-run:",
    ]
    assert "- All tasks successfully allocated." in text and "Job Modify Index: 42" in text


def test_a_new_job_and_an_unchanged_job_render_like_the_cli():
    added = {"Diff": {"Type": "Added", "ID": "example", "TaskGroups": [
        {"Type": "Added", "Name": "web", "Fields": [{"Type": "Added", "Name": "Count", "New": "1"}],
         "Tasks": [{"Type": "Added", "Name": "server", "Annotations": ["forces create"]}], "Updates": {"create": 1}}]}}
    assert render_plan(added, "example").splitlines()[:3] == [
        '+ Job: "example"', '+ Task Group: "web" (1 create)', '  + Task: "server" (forces create)']
    unchanged = {"Diff": {"Type": "None", "ID": "example", "TaskGroups": [
        {"Type": "None", "Name": "web", "Tasks": [{"Type": "None", "Name": "server"}], "Updates": {"ignore": 1}}]}}
    assert render_plan(unchanged, "example").splitlines()[:3] == [
        'Job: "example"', 'Task Group: "web" (1 ignore)', '  Task: "server"']


def test_failed_placements_render_with_the_monitor_words():
    metric = {"NodesEvaluated": 3, "NodesExhausted": 3, "DimensionExhausted": {"memory": 3},
              "ConstraintFiltered": {"${attr.kernel.name} = windows": 1}, "CoalescedFailures": 2}
    text = render_plan({"Diff": {"Type": "Added", "ID": "c"}, "FailedTGAllocs": {"cache": metric}}, "c")
    assert "- WARNING: Failed to place all allocations." in text
    assert '  Task Group "cache" (failed to place 3 allocations):' in text
    assert '    * Dimension "memory" exhausted on 3 nodes' in text
    assert metric_lines({"NodesEvaluated": 0}) == ["No nodes were eligible for evaluation"]


def test_placement_failure_is_one_line_per_group():
    metric = {"NodesEvaluated": 3, "NodesExhausted": 3, "DimensionExhausted": {"memory": 3}}
    assert placement_failure("cache", metric, 3, 3) == 'group "cache": 0 of 3 placed: resources exhausted on 3 nodes (memory)'
    filtered = {"NodesEvaluated": 2, "NodesFiltered": 2, "ConstraintFiltered": {"missing drivers": 2}}
    assert placement_failure("web", filtered, 2, 1) == (
        'group "web": 1 of 2 placed: constraint "missing drivers": 2 nodes excluded by filter')


@pytest.mark.parametrize("value, expected", [
    ("nginx:1.25", '"nginx:1.25"'),
    ('say "hi" ${not} %{not}', '"say \\"hi\\" $${not} %%{not}"'),
    (3, "3"), (2.5, "2.5"), (True, "true"), (None, "null"),
    (["a", 1], '["a", 1]'),
    ({"k": ["v"]}, '{"k" = ["v"]}'),
])
def test_variable_values_become_hcl_expressions(value, expected):
    assert hcl_value(value) == expected


def test_variable_assignments_are_sorted_lines_and_names_are_checked():
    assert variable_assignments({"replicas": 2, "image": "x"}) == 'image = "x"\nreplicas = 2\n'
    with pytest.raises(JobSpecError, match="not a valid HCL variable name"):
        variable_assignments({"bad name": 1})


@pytest.mark.parametrize("source, expected", [
    ({"ID": "web"}, "json"), ({"job": {"web": {}}}, "hcl2"), ('  {"ID": "web"}', "json"),
    ('{"job": {"web": {}}}', "hcl2"), ('job "web" {}', "hcl2"), ("{not json", "json"),
])
def test_source_format(source, expected):
    assert source_format(source) == expected


def test_json_jobs_and_what_is_not_a_job():
    request = JobRequest(source="")
    assert job_from_json('{"Job": {"ID": "web", "TaskGroups": []}}', request)["ID"] == "web"
    for bad in ('{"Foo": 1}', "[1]", '{"ID": ""}'):
        with pytest.raises(JobSpecError, match="is not a Nomad job"):
            job_from_json(bad, request)
    with pytest.raises(JobSpecError, match="only apply to HCL2"):
        job_from_json({"ID": "web"}, JobRequest(source="", variables={"a": 1}))


def test_check_index_conflicts_use_nomads_words():
    refuse_index_conflict(None, {"JobModifyIndex": 7}, "web")
    refuse_index_conflict(7, {"JobModifyIndex": 7}, "web")
    refuse_index_conflict(0, {"JobModifyIndex": 0}, "web")
    with pytest.raises(JobSpecError, match="Enforcing job modify index 0: job already exists"):
        refuse_index_conflict(0, {"JobModifyIndex": 7}, "web")
    with pytest.raises(JobSpecError, match="Enforcing job modify index 5: job does not exist"):
        refuse_index_conflict(5, {"JobModifyIndex": 0}, "web")
    with pytest.raises(JobSpecError, match="conflicting job modify index: 7"):
        refuse_index_conflict(5, {"JobModifyIndex": 7}, "web")


def test_preserved_counts_keep_existing_groups_only():
    job = {"TaskGroups": [{"Name": "web", "Count": 2}, {"Name": "new", "Count": 1}]}
    current = {"TaskGroups": [{"Name": "web", "Count": 5}]}
    assert with_preserved_counts(job, current)["TaskGroups"] == [{"Name": "web", "Count": 5}, {"Name": "new", "Count": 1}]
    assert with_preserved_counts(job, None)["TaskGroups"] == job["TaskGroups"]


def test_the_job_namespace_comes_from_the_spec_or_the_option():
    assert job_namespace({}, "prod") == "prod"
    assert job_namespace({"Namespace": "prod"}, "default") == "prod"
    assert job_namespace({"Namespace": "prod"}, "prod") == "prod"
    with pytest.raises(JobSpecError, match="differs from the namespace option"):
        job_namespace({"Namespace": "prod"}, "staging")


def test_without_pygohcl_variables_are_refused_never_passed_unchecked(monkeypatch):
    monkeypatch.setattr(_jobs, "HAS_PYGOHCL", False)
    assert "pygohcl" in variables_needing_pygohcl(JobRequest(source="", variables={"a": 1}))
    assert variables_needing_pygohcl(JobRequest(source="")) is None


def test_declared_variables_are_read_with_pygohcl():
    text = 'variable "image" {\n  type = string\n}\nvariables {\n  region = "eu"\n}\njob "web" {\n}\n'
    assert _jobs.declared_variables(text, "web.hcl") == {"image", "region"}
    with pytest.raises(JobSpecError, match='declares no variable "colour"'):
        _jobs.refuse_undeclared_variables(JobRequest(source=text, variables={"image": "x", "colour": 1},
                                                     source_name="web.hcl"), text)


def test_nomad_warnings_are_split_per_warning():
    assert nomad_warnings({"Warnings": "2 warnings:\n\n* one\n* two"}, {"Warnings": ""}) == ["one", "two"]


def _alloc(version, status, tasks_running=True):
    state = "running" if tasks_running else "dead"
    return {"ID": f"{status}-{version}", "JobVersion": version, "ClientStatus": status, "DesiredStatus": "run",
            "TaskStates": {"main": {"State": state}}}


def test_version_judge_waits_for_every_allocation_of_the_new_version():
    lines = []
    judge = version_judge({"ID": "web", "Version": 1, "Type": "service", "TaskGroups": [{"Name": "g", "Count": 2}]},
                          Progress(lines.append))
    assert not judge([_alloc(0, "running"), _alloc(1, "running")]).met
    assert judge([_alloc(1, "running"), _alloc(1, "running")]).met
    assert judge([_alloc(1, "failed", False), _alloc(1, "running")]).hopeless
    assert lines == ["job 'web' version 1: 1 of 2 placed, 1 running, 0 failed",
                     "job 'web' version 1: 2 of 2 placed, 2 running, 0 failed",
                     "job 'web' version 1: 2 of 2 placed, 1 running, 1 failed"]
    batch = version_judge({"ID": "b", "Version": 0, "Type": "batch", "TaskGroups": [{"Name": "g", "Count": 1}]}, Progress())
    assert not batch([_alloc(0, "running")]).met and batch([_alloc(0, "complete", False)]).met


def test_deployment_verdicts():
    job = {"ID": "web", "Version": 3}
    judge = deployment_judge(Progress(), job)
    group = {"DesiredTotal": 2, "PlacedAllocs": 2, "HealthyAllocs": 2, "UnhealthyAllocs": 0}
    assert judge({"ID": "d1", "Status": "successful", "TaskGroups": {"web": group}}).met
    assert judge({"ID": "d1", "Status": "failed", "TaskGroups": {"web": group}}).hopeless
    assert judge({"ID": "d1", "Status": "cancelled", "TaskGroups": {}}).hopeless
    running = {"ID": "d1", "Status": "running", "TaskGroups": {"web": dict(group, HealthyAllocs=1)}}
    assert not judge(running).met and not judge(running).hopeless
    canaries = {"web": dict(group, DesiredCanaries=1, PlacedCanaries=["a"], HealthyAllocs=1, Promoted=False)}
    assert requires_promotion({"TaskGroups": canaries}) and judge({"ID": "d1", "Status": "running", "TaskGroups": canaries}).met
    assert not requires_promotion({"TaskGroups": {"web": dict(canaries["web"], HealthyAllocs=0)}})
    assert not requires_promotion({"TaskGroups": {"web": dict(canaries["web"], Promoted=True)}})


class _Answer:
    def __init__(self, data, index):
        self.data = data
        self.index = index


class ScriptedClient:
    """Answers GETs from `answers` (path -> list of successive bodies; the last one repeats), every answer with a
    new index, and log streams from `logs` (path -> bytes)."""

    def __init__(self, answers, logs=None):
        self.answers = {path: list(bodies) for path, bodies in answers.items()}
        self.logs = logs or {}
        self.index = 10
        self.requests = []

    def read(self, path, params=None, timeout=None):
        self.requests.append(path)
        bodies = self.answers[path]
        self.index += 1
        return _Answer(bodies.pop(0) if len(bodies) > 1 else bodies[0], self.index)

    def blocking_read(self, path, params, index, wait):
        return self.read(path, params)

    def stream(self, path, params=None, timeout=None):
        data = self.logs.get((path, params["type"]), b"")
        yield json.dumps({"Data": base64.b64encode(data).decode()}).encode()


JOB_V3 = {"ID": "web", "Namespace": "default", "Type": "service", "Version": 3, "TaskGroups": [{"Name": "web", "Count": 2}]}
DEPLOYMENT = "d1d1d1d1-0000-4000-8000-000000000000"
UNHEALTHY = {"ID": "a1a1a1a1-0000-4000-8000-000000000000", "Name": "web.web[0]", "Namespace": "default",
             "ClientStatus": "running", "DesiredStatus": "run", "DeploymentStatus": {"Healthy": False},
             "TaskStates": {"server": {"State": "running", "Events": [{"Type": "Started", "DisplayMessage": "Task started"}]}}}


def _deployment(status, description="", healthy=0):
    return {"ID": DEPLOYMENT, "Status": status, "StatusDescription": description,
            "TaskGroups": {"web": {"DesiredTotal": 2, "PlacedAllocs": 2, "HealthyAllocs": healthy, "UnhealthyAllocs": 0}}}


def _client_for(deployments):
    return ScriptedClient({
        "/v1/evaluation/e1": [{"Status": "complete", "DeploymentID": DEPLOYMENT}],
        f"/v1/deployment/{DEPLOYMENT}": deployments,
        f"/v1/deployment/allocations/{DEPLOYMENT}": [[UNHEALTHY]],
        f"/v1/allocation/{UNHEALTHY['ID']}": [UNHEALTHY],
        f"/v1/allocation/{UNHEALTHY['ID']}/checks": [{"c1": {"Check": "ready", "Service": "web", "Status": "failure",
                                                             "Output": "connection refused"}}],
    }, logs={(f"/v1/client/fs/logs/{UNHEALTHY['ID']}", "stderr"): b"listen: address in use\n"})


def test_a_successful_deployment_is_waited_for_with_blocking_reads():
    lines = []
    client = _client_for([_deployment("running", healthy=1), _deployment("successful", healthy=2)])
    facts, allocations = watch_registration(client, JOB_V3, "e1", 60, 5, Progress(lines.append))
    assert facts["Status"] == "successful" and facts["groups"]["web"]["healthy"] == 2 and not facts["requires_promotion"]
    assert allocations == [UNHEALTHY]
    assert lines == ["job 'web' version 3: deployment d1d1d1d1 running: 2 of 2 placed, 1 healthy",
                     "job 'web' version 3: deployment d1d1d1d1 successful: 2 of 2 placed, 2 healthy"]


def test_a_failed_deployment_names_job_version_deployment_and_nomads_reason_with_the_failure_report():
    why = "Failed due to unhealthy allocations - rolling back to job version 2"
    client = _client_for([_deployment("running"), _deployment("failed", why)])
    with pytest.raises(RolloutFailed) as failure:
        watch_registration(client, JOB_V3, "e1", 60, 5, Progress())
    assert str(failure.value) == (f"job 'web' version 3: deployment d1d1d1d1 failed: {why} "
                                  '(why: alloc a1a1a1a1 web.web[0] check "ready" failure: connection refused)')
    report = failure.value.details["failed_allocations"][0]
    assert report["id"] == "a1a1a1a1" and report["summary"]["health"] == "unhealthy"
    assert report["checks"] == [{"name": "ready", "service": "web", "status": "failure", "output": "connection refused"}]
    assert report["tasks"][0]["stderr_lines"] == ["listen: address in use"]
    assert failure.value.details["deployment"]["Status"] == "failed"


def test_a_deployment_paused_during_the_wait_ends_it_at_once_saying_how_to_go_on():
    paused = dict(_deployment("paused", "Deployment is paused"), JobID="web", JobVersion=3)
    client = _client_for([_deployment("running"), paused])
    with pytest.raises(RolloutFailed) as failure:
        watch_registration(client, JOB_V3, "e1", 600, 5, Progress())
    assert str(failure.value) == ("deployment d1d1d1d1 of job 'web' version 3 is paused (Deployment is paused) and ends "
                                  "only when resumed or failed: resume it with nomadops.nomad.nomad_deployment "
                                  "state=running (and wait), or fail it with state=failed")
    assert failure.value.details["deployment"]["Status"] == "paused"
    assert client.requests.count(f"/v1/deployment/{DEPLOYMENT}") == 2


def test_a_blocked_evaluation_fails_at_once_per_group():
    client = ScriptedClient({"/v1/evaluation/e1": [{"Status": "complete", "QueuedAllocations": {"web": 2},
                                                    "FailedTGAllocs": {"web": {"NodesEvaluated": 1, "NodesExhausted": 1,
                                                                               "DimensionExhausted": {"cpu": 1}}}}]})
    with pytest.raises(RolloutFailed, match='group "web": 0 of 2 placed: resources exhausted on 1 nodes \\(cpu\\)'):
        watch_registration(client, JOB_V3, "e1", 60, 5, Progress())
    assert client.requests == ["/v1/evaluation/e1"]


def _report(checks=(), tasks=()):
    return [{"id": "a1a1a1a1", "summary": {"name": "web.web[0]"}, "checks": list(checks), "tasks": list(tasks)}]


def test_the_reason_quotes_a_crash_in_an_operators_words():
    crashed = {"task": "server", "state": "dead", "failed": True, "stderr_lines": ["panic: no config", ""],
               "events": [{"type": "Terminated", "message": "Exit Code: 2"},
                          {"type": "Alloc Unhealthy", "message": "Unhealthy because of failed task"}]}
    assert first_reason(_report(tasks=[crashed])) == (
        ' (why: alloc a1a1a1a1 web.web[0] task "server": Exit Code: 2, stderr: panic: no config)')
    slow = {"task": "server", "state": "pending", "failed": False, "stderr_lines": [],
            "events": [{"type": "Alloc Unhealthy", "message": "Task not running by healthy_deadline of 2s"}]}
    assert first_reason(_report(tasks=[slow])) == (
        ' (why: alloc a1a1a1a1 web.web[0] task "server": Task not running by healthy_deadline of 2s)')


def test_the_reason_prefers_a_failing_check_and_stays_short():
    check = {"name": "ready", "status": "failure", "output": "x" * 1000}
    running = {"task": "server", "state": "running", "failed": False, "events": [{"type": "Started", "message": "ok"}]}
    reason = first_reason(_report(checks=[check], tasks=[running]))
    assert reason.startswith(' (why: alloc a1a1a1a1 web.web[0] check "ready" failure: xxx') and len(reason) < 400
    unreadable = {"name": None, "status": "unknown", "output": "checks unavailable: 500"}
    assert first_reason(_report(checks=[unreadable], tasks=[running])) == ""
    assert first_reason([]) == ""


def test_canary_progress_counts_the_canaries():
    lines = []
    judge = deployment_judge(Progress(lines.append), {"ID": "api", "Version": 2})
    group = {"DesiredTotal": 2, "DesiredCanaries": 1, "PlacedCanaries": ["c"], "PlacedAllocs": 1, "Promoted": False}
    judge({"ID": DEPLOYMENT, "Status": "running", "TaskGroups": {"api": dict(group, HealthyAllocs=0)}})
    judge({"ID": DEPLOYMENT, "Status": "running", "TaskGroups": {"api": dict(group, HealthyAllocs=1)}})
    judge({"ID": DEPLOYMENT, "Status": "failed", "TaskGroups": {"api": dict(group, HealthyAllocs=0, UnhealthyAllocs=1)}})
    assert lines == ["job 'api' version 2: deployment d1d1d1d1 running: 1 of 1 canaries placed, 0 healthy",
                     "job 'api' version 2: deployment d1d1d1d1 running: 1 of 1 canaries placed, 1 healthy; "
                     "the canaries wait for a promotion",
                     "job 'api' version 2: deployment d1d1d1d1 failed: 1 of 1 canaries placed, 0 healthy, 1 unhealthy"]


def test_a_timeout_reports_the_allocations_without_a_verdict():
    pending = dict(UNHEALTHY, DeploymentStatus=None)
    client = _client_for([_deployment("running")])
    client.answers[f"/v1/deployment/allocations/{DEPLOYMENT}"] = [[pending]]
    client.answers[f"/v1/allocation/{UNHEALTHY['ID']}"] = [pending]
    with pytest.raises(RolloutFailed) as failure:
        watch_registration(client, JOB_V3, "e1", 0, 5, Progress())
    assert str(failure.value) == ("job 'web' version 3: deployment d1d1d1d1 still running after wait_timeout (0 s) "
                                  '(why: alloc a1a1a1a1 web.web[0] check "ready" failure: connection refused)')
    assert [entry["id"] for entry in failure.value.details["failed_allocations"]] == ["a1a1a1a1"]


def test_importing_the_jobs_code_does_not_load_pygohcl():
    """Ansible's main process imports the action's code and then forks a worker per task; a worker forked from a
    process that loaded pygohcl (Go's runtime) can hang for good in its first call into it."""
    root = Path(_jobs.__file__).resolve().parents[6]  # the directory holding ansible_collections/
    code = ("import sys; import ansible_collections.nomadops.nomad.plugins.module_utils.jobs.spec as jobs; "
            "assert jobs.HAS_PYGOHCL; print('pygohcl' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "False", loaded.stderr


def test_a_stop_is_watched_until_every_allocation_is_terminal():
    lines = []
    running = {"ID": "r1", "ClientStatus": "running", "DesiredStatus": "stop"}
    client = ScriptedClient({"/v1/job/web/allocations": [[running, _alloc(0, "complete", False)],
                                                         [dict(running, ClientStatus="complete"), _alloc(0, "complete", False)]]})
    watch_stopped(client, JOB_V3, 60, Progress(lines.append))
    assert lines == ["job 'web' stopping: 1 of 2 allocation(s) terminal", "job 'web' stopping: 2 of 2 allocation(s) terminal"]
    purged = []
    watch_stopped(ScriptedClient({"/v1/job/web/allocations": [[]]}), JOB_V3, 60, Progress(purged.append))
    assert purged == ["job 'web': no allocation left"]
