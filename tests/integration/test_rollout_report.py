# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_deployment's wait on a deployment that fails: the task fails with one line and the failure report of
nomad_job, here with real content (scenario rollout-process.yml: real processes, a service check that really runs
and never passes, a task that writes to stderr)."""

from __future__ import annotations

from tests.integration.conftest import AnsibleRunner

EMULATOR_SCENARIO = "rollout-process.yml"

JOB = '''job "unready" {
  datacenters = ["dc1"]
  group "web" {
    count = 1
    update {
      max_parallel      = 1
      min_healthy_time  = "100ms"
      healthy_deadline  = "500ms"
      progress_deadline = "1s"
    }
    service {
      name     = "unready"
      provider = "nomad"
      check {
        name     = "db"
        type     = "script"
        task     = "server"
        command  = "/bin/sh"
        args     = ["-c", "echo db unreachable on port 5432; exit 2"]
        interval = "100ms"
        timeout  = "1s"
      }
    }
    task "server" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo config /local/app.conf missing >&2; trap 'exit 0' TERM; while :; do sleep 1; done"]
      }
      kill_timeout = "1s"
    }
  }
}
'''


def test_wait_on_a_failing_deployment_reports_why(ansible_runner: AnsibleRunner):
    run = ansible_runner.playbook([dict(hosts="localhost", gather_facts=False, tasks=[
        dict(name="register", **{"nomadops.nomad.nomad_job": dict(spec=JOB, wait=False)}),
        dict(name="wait", ignore_errors=True,
             **{"nomadops.nomad.nomad_deployment": dict(job="unready", wait=True, diagnose_lines=5)}),
    ])])
    assert run.rc == 0, run.output
    waited = run.task("wait")
    assert waited["_status"] == "ignored"
    assert waited["msg"].startswith("job 'unready' version 0: deployment ")
    assert waited["msg"].endswith(' failed: Failed due to progress deadline (why: alloc '
                                  f'{waited["failed_allocations"][0]["id"]} unready.web[0] check "db" failure: '
                                  'db unreachable on port 5432)')
    assert waited["deployment"]["Status"] == "failed" and waited["deployment"]["groups"]["web"]["unhealthy"] == 1
    [report] = waited["failed_allocations"]
    assert report["summary"]["name"] == "unready.web[0]"
    assert [(check["name"], check["status"]) for check in report["checks"]] == [("db", "failure")]
    assert report["checks"][0]["output"].startswith("db unreachable on port 5432")
    [server] = report["tasks"]
    assert server["stderr_lines"] == ["config /local/app.conf missing"]
