# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""playbooks/canary_flow.yml end to end against the emulator (scenario rollout-process.yml, real processes so that the
check runs inside the canaries over exec): a first version without canaries, a healthy canary promoted, a bad canary
failed and rolled back. The playbook is the copy in the collection under test (build/collections)."""

from __future__ import annotations

import pytest
import requests

from tests.integration.conftest import AnsibleRunner, collections_path

EMULATOR_SCENARIO = "rollout-process.yml"
PLAYBOOK = collections_path() / "ansible_collections" / "nomadops" / "nomad" / "playbooks" / "canary_flow.yml"
CHECK = ["/bin/sh", "-c", 'test "$APP_STATUS" = ok || { echo "status is $APP_STATUS" >&2; exit 1; }']

JOB = '''variable "release" {
  type = string
}
variable "status" {
  type    = string
  default = "ok"
}
job "shop" {
  datacenters = ["dc1"]
  group "web" {
    count = 2
    update {
      max_parallel     = 1
      canary           = 1
      auto_revert      = true
      min_healthy_time = "100ms"
      healthy_deadline = "30s"
      progress_deadline = "1m"
    }
    task "server" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
      }
      env {
        RELEASE    = "${var.release}"
        APP_STATUS = "${var.status}"
      }
    }
  }
}
'''


@pytest.fixture(scope="module")
def flow(ansible_runner: AnsibleRunner, tmp_path_factory):
    """Runs the playbook with the job file and the check; release/status are the job's HCL2 variables."""
    job_file = tmp_path_factory.mktemp("canary") / "shop.nomad.hcl"
    job_file.write_text(JOB)

    def run(release, status="ok"):
        return ansible_runner.playbook(str(PLAYBOOK), extra_vars={
            "canary_job_src": str(job_file), "canary_check_argv": CHECK,
            "canary_job_variables": {"release": release, "status": status}})
    return run


def test_first_version_deploys_without_a_promotion(flow):
    run = flow("1")
    assert run.rc == 0, run.output
    deployed = run.task("Deploy the new version; returns once its canaries are placed and healthy")
    assert deployed["changed"] and deployed["job"]["Version"] == 0
    assert deployed["deployment"]["requires_promotion"] is False
    skipped = [name for name, status in run.statuses() if status == "skipped"]
    assert skipped == ["Find the canaries of the deployment", "Run the check inside each canary", "Judge the checks",
                       "Promote the canaries and wait until the rollout is successful"], run.statuses()


def test_healthy_canary_is_promoted(flow, integration_emulator):
    run = flow("2")
    assert run.rc == 0, run.output
    deployed = run.task("Deploy the new version; returns once its canaries are placed and healthy")
    assert deployed["deployment"]["requires_promotion"] is True
    checks = run.task("Run the check inside each canary")["results"]
    assert [check["rc"] for check in checks] == [0]
    promoted = run.task("Promote the canaries and wait until the rollout is successful")
    assert promoted["changed"] and promoted["deployment"]["Status"] == "successful"
    assert promoted["deployment"]["ID"] == deployed["deployment"]["ID"]
    running = [alloc for alloc in integration_emulator.allocations("default")
               if alloc["JobID"] == "shop" and alloc["ClientStatus"] == "running"]
    assert sorted(alloc["JobVersion"] for alloc in running) == [1, 1]


def test_bad_canary_fails_the_deployment_and_rolls_back(flow, integration_emulator):
    run = flow("3", status="broken")
    assert run.rc != 0
    checks = run.task("Run the check inside each canary")["results"]
    assert [(check["rc"], check["stderr"]) for check in checks] == [(1, "status is broken")]
    assert run.task("Judge the checks")["_status"] == "failed"
    failed = run.task("Fail the deployment (Nomad rolls back to the last stable version when the job has auto_revert)")
    assert failed["changed"] and failed["deployment"]["Status"] == "failed" and failed["reverted_job_version"] == 1
    rollback = run.task("Wait for the rollback deployment")["deployment"]
    assert rollback["ID"] != failed["deployment"]["ID"]
    latest = requests.get(f"{integration_emulator.address}/v1/job/shop/deployment", timeout=30).json()
    assert (latest["ID"], latest["JobVersion"], latest["Status"]) == (rollback["ID"], 3, "successful")
    stop = run.task("Stop here, the new version did not go out")["msg"]
    assert stop == (f"job shop version 2: the check failed in shop.web[0] (rc 1: status is broken); "
                    f"deployment {failed['deployment']['ID'][:8]} failed, rolled back to version 1")
    running = [alloc for alloc in integration_emulator.allocations("default")
               if alloc["JobID"] == "shop" and alloc["ClientStatus"] == "running"]
    assert len(running) == 2 and {alloc["JobVersion"] for alloc in running} == {3}
