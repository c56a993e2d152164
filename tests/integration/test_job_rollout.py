# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_job's rollout waits against the emulator (scenario jobs-rollout.yml: real processes, ACLs on, health gates
shortened in the jobs' update blocks): a deployment that succeeds, waited for with blocking queries only; a new
version that crashes and is rolled back; a check that never passes; canaries left for promotion and an unhealthy
canary; `absent` waiting until every allocation is terminal. One playbook run at -vvvv, so that the progress lines
(-v) and the token's absence (-vvvv) are read from the same output."""

from __future__ import annotations

from tests.integration.conftest import AnsibleRunner

EMULATOR_SCENARIO = "jobs-rollout.yml"
MANAGEMENT = "00000000-0000-4000-8000-000000000001"
JOB = "nomadops.nomad.nomad_job"

# The end of both jobs' group: no restarts (a crash fails the allocation at once); the task runs `var.command`
# (a variable, so that a crashing version is one task argument away from a healthy one) with `var.version` in its
# environment (a new version is a destructive update).
SERVER_TASK = '''    restart {
      attempts = 0
    }

    task "server" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", var.command]
      }

      env {
        VERSION = var.version
      }

      kill_timeout = "2s"
    }
  }
}
'''

WEB_HCL = '''variable "version" {
  type = string
}

variable "command" {
  type    = string
  default = "echo serving; trap 'exit 0' TERM; while :; do sleep 1; done"
}

job "web" {
  datacenters = ["dc1"]

  group "app" {
    count = 2

    update {
      max_parallel      = 1
      min_healthy_time  = "1s"
      healthy_deadline  = "20s"
      progress_deadline = "0s"
      auto_revert       = true
    }

''' + SERVER_TASK

# A job whose health includes a script check (health_check = "checks" is Nomad's default); canaries on demand.
API_HCL = '''variable "version" {
  type = string
}

variable "check_command" {
  type    = string
  default = "echo ready"
}

variable "canaries" {
  type    = number
  default = 0
}

variable "command" {
  type    = string
  default = "trap 'exit 0' TERM; while :; do sleep 1; done"
}

job "api" {
  datacenters = ["dc1"]

  group "api" {
    count = 2

    update {
      max_parallel      = 1
      canary            = var.canaries
      min_healthy_time  = "200ms"
      healthy_deadline  = "2s"
      progress_deadline = "0s"
    }

    service {
      name     = "api"
      provider = "nomad"

      check {
        name     = "ready"
        type     = "script"
        task     = "server"
        command  = "/bin/sh"
        args     = ["-c", var.check_command]
        interval = "200ms"
        timeout  = "1s"
      }
    }

''' + SERVER_TASK

CRASH = "echo 'loading config'; echo 'panic: config key database.url is missing' >&2; exit 2"
NOT_READY = "echo 'GET /health: 503 database unreachable'; exit 2"
BIND = "echo 'listen tcp :8080: bind: address already in use' >&2; exit 1"


def task(name, module, args, **extra):
    return dict(name=name, **{module: args}, register=name.replace(" ", "_").replace("-", "_"), **extra)


def control(name, address, method, path):
    """A request to the emulator's control API (its request log), as a task between the rollouts."""
    return {"name": name, "ansible.builtin.uri": dict(url=f"{address}/_emulator/{path}", method=method),
            "register": name.replace(" ", "_")}


def rollout_play(address):
    def web(version, **variables):
        return dict(src="web.nomad.hcl", variables=dict(version=version, **variables))

    def api(version, **variables):
        return dict(src="api.nomad.hcl", variables=dict(version=version, **variables))

    return [dict(hosts="localhost", gather_facts=False, tasks=[
        task("web v1", JOB, web("1")),
        control("reset request log", address, "DELETE", "requests"),
        task("web v2", JOB, web("2")),
        control("request log", address, "GET", "requests"),
        task("web crash", JOB, web("3", command=CRASH), ignore_errors=True),
        task("api v1", JOB, api("1")),
        task("api check fails", JOB, api("2", check_command=NOT_READY), ignore_errors=True),
        task("api canary", JOB, api("3", canaries=1)),
        task("api canary crash", JOB, api("4", canaries=1, command=BIND), ignore_errors=True),
        task("web stop", JOB, dict(name="web", state="absent")),
        task("web after stop", "nomadops.nomad.nomad_alloc_info", dict(job="web")),
    ])]


def test_rollouts(ansible_runner: AnsibleRunner, integration_emulator):
    (ansible_runner.workdir / "web.nomad.hcl").write_text(WEB_HCL)
    (ansible_runner.workdir / "api.nomad.hcl").write_text(API_HCL)
    address = integration_emulator.address
    run = ansible_runner.playbook(rollout_play(address), env={"NOMAD_TOKEN": MANAGEMENT}, verbosity=4)
    assert run.rc == 0, run.output
    assert MANAGEMENT not in run.output

    assert_waited_with_blocking_queries(run)
    assert_crash_reported_with_rollback(run)
    assert_failing_check_reported(run)
    assert_canaries_left_for_promotion(run)
    assert_stop_waited_until_terminal(run)


def assert_waited_with_blocking_queries(run):
    deployed = run.task("web v2")
    assert deployed["changed"] and deployed["job"]["Version"] == 1
    deployment = deployed["deployment"]
    assert (deployment["Status"], deployment["requires_promotion"]) == ("successful", False)
    assert deployment["groups"]["app"] == dict(desired=2, placed=2, healthy=2, unhealthy=0, canaries=0, promoted=False)
    assert [entry["client_status"] for entry in deployed["summary"]] == ["running", "running"]
    log = run.task("request log")["json"]
    reads = f"GET /v1/deployment/{deployment['ID']}"
    # One plain read, then one blocking query per change of the deployment (at most two placements, two health
    # verdicts and the success; Nomad's index often covers several): a loop that polled would read it dozens of
    # times over the two min_healthy_time periods of the rollout.
    assert log["blocking"][reads] == log["counts"][reads] - 1 and log["counts"][reads] <= 10, log
    evaluation = f"GET /v1/evaluation/{deployed['eval_id']}"
    assert log["counts"][evaluation] - log["blocking"].get(evaluation, 0) == 1, log
    assert "GET /v1/job/web/allocations" not in log["counts"], log  # a deployment is watched, not the allocations
    short = deployment["ID"][:8]
    progress = [line for line in run.output.splitlines() if line.startswith(f"job 'web' version 1: deployment {short}")]
    assert progress[-1] == f"job 'web' version 1: deployment {short} successful: 2 of 2 placed, 2 healthy"
    assert len(progress) == len(set(progress)), progress  # one line per state change


def assert_crash_reported_with_rollback(run):
    crash = run.task("web crash")
    short = crash["deployment"]["ID"][:8]
    assert crash["_status"] == "ignored" and not crash["changed"]
    assert crash["msg"].startswith(
        f"job 'web' version 2: deployment {short} failed: Failed due to unhealthy allocations - rolling back to job "
        "version 1 (why: alloc "), crash["msg"]
    assert crash["msg"].endswith(' task "server": Exit Code: 2, stderr: panic: config key database.url is missing)')
    report = crash["failed_allocations"]
    assert len(report) == 1 and report[0]["summary"]["client_status"] == "failed"
    assert report[0]["summary"]["health"] == "unhealthy" and report[0]["checks"] == []
    server = report[0]["tasks"][0]
    assert (server["task"], server["state"], server["failed"]) == ("server", "dead", True)
    assert server["stderr_lines"] == ["panic: config key database.url is missing"]
    assert server["stdout_lines"] == ["loading config"]
    assert [(event["type"], event["message"]) for event in server["events"]] == [
        ("Terminated", "Exit Code: 2"), ("Not Restarting", "Policy allows no restarts"),
        ("Alloc Unhealthy", "Unhealthy because of failed task")]


def assert_failing_check_reported(run):
    failed = run.task("api check fails")
    assert failed["_status"] == "ignored"
    assert failed["deployment"]["StatusDescription"] == "Failed due to unhealthy allocations"
    assert failed["msg"].endswith('api.api[0] check "ready" failure: GET /health: 503 database unreachable)'), failed["msg"]
    report = failed["failed_allocations"][0]
    assert report["summary"]["client_status"] == "running" and report["summary"]["health"] == "unhealthy"
    assert report["checks"] == [dict(name="ready", service="api", status="failure",
                                     output="GET /health: 503 database unreachable")]


def assert_canaries_left_for_promotion(run):
    canary = run.task("api canary")
    assert canary["_status"] == "changed" and canary["job"]["Version"] == 2
    deployment = canary["deployment"]
    assert (deployment["Status"], deployment["requires_promotion"]) == ("running", True)
    assert deployment["StatusDescription"] == "Deployment is running but requires manual promotion"
    assert deployment["groups"]["api"] == dict(desired=2, placed=1, healthy=1, unhealthy=0, canaries=1, promoted=False)
    short = deployment["ID"][:8]
    assert (f"job 'api' version 2: deployment {short} running: 1 of 1 canaries placed, 1 healthy; "
            "the canaries wait for a promotion") in run.output

    unhealthy = run.task("api canary crash")
    assert unhealthy["_status"] == "ignored" and unhealthy["deployment"]["requires_promotion"] is False
    assert unhealthy["msg"].endswith(
        ' task "server": Exit Code: 1, stderr: listen tcp :8080: bind: address already in use)'), unhealthy["msg"]
    assert unhealthy["failed_allocations"][0]["tasks"][0]["stderr_lines"] == [
        "listen tcp :8080: bind: address already in use"]


def assert_stop_waited_until_terminal(run):
    stopped = run.task("web stop")
    assert stopped["changed"] and stopped["job"]["Stop"] is True
    progress = [line for line in run.output.splitlines() if line.startswith("job 'web' stopping: ")]
    total = progress[-1].split(" of ")[1].split()[0]
    assert progress[-1] == f"job 'web' stopping: {total} of {total} allocation(s) terminal", progress
    assert len(progress) == len(set(progress)), progress
    allocations = run.task("web after stop")["allocations"]  # read right after the task returned
    assert len(allocations) == int(total)
    assert all(alloc["ClientStatus"] in ("complete", "failed", "lost") for alloc in allocations), allocations
