# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_deployment, nomad_job_revert and nomad_job_scale against the emulator (scenario rollout-control.yml:
virtual allocations, ACLs on): a canary promotion, fail with auto_revert, pause/resume, waiting on a successful
and a failed deployment, reverts there and back, scaling with check_index; then every bad input and check mode
as one line with nothing written. Two playbook runs with many tasks each."""

from __future__ import annotations

from tests import hcl_jobs
from tests.integration.conftest import AnsibleRunner

EMULATOR_SCENARIO = "rollout-control.yml"
MANAGEMENT = "00000000-0000-4000-8000-000000000001"
READER = "00000000-0000-4000-8000-000000000002"
JOB = "nomadops.nomad.nomad_job"
DEPLOYMENT = "nomadops.nomad.nomad_deployment"
REVERT = "nomadops.nomad.nomad_job_revert"
SCALE = "nomadops.nomad.nomad_job_scale"

FAST = 'max_parallel = 1\n      min_healthy_time = "100ms"\n      healthy_deadline = "30s"\n      progress_deadline = "1m"'
CANARY = FAST + "\n      canary = 1"
AUTO_REVERT = FAST + "\n      auto_revert = true"
MANUAL = 'max_parallel = 1\n      health_check = "manual"\n      canary = 1\n      auto_revert = true'


def job_hcl(job_id, update, version="1", count=2):
    """A service job with an update block; `version` goes into the environment (a destructive change)."""
    return hcl_jobs.job_hcl(job_id, hcl_jobs.group_hcl(hcl_jobs.task_hcl(env={"VERSION": version}), count=count,
                                                       update=update))


def group_hcl(name, update, version):
    return hcl_jobs.group_hcl(hcl_jobs.task_hcl(None, env={"VERSION": version}), name=name, count=1, update=update)


def groups_hcl(job_id, version="1"):
    """Groups `a` and `b` roll out with a canary each, `plain` without canaries."""
    return hcl_jobs.job_hcl(job_id, *(group_hcl(name, update, version)
                                      for name, update in (("a", CANARY), ("b", CANARY), ("plain", FAST))))


def bounded_job(count=2):
    """A JSON job whose group has a scaling block (the emulator's HCL does not parse `scaling`)."""
    return {"ID": "bounded", "Name": "bounded", "Type": "service", "Datacenters": ["dc1"], "TaskGroups": [{
        "Name": "web", "Count": count, "Scaling": {"Min": 1, "Max": 3, "Enabled": True},
        "Tasks": [{"Name": "server", "Driver": "raw_exec", "Config": {"command": "/bin/sh"}}]}]}


def task(name, module, args, **extra):
    return dict(name=name, **{module: args}, register=name.replace(" ", "_").replace("-", "_"), **extra)


def control_play():
    return [dict(hosts="localhost", gather_facts=False, tasks=[
        # a canary flow: deploy, promote, promote again
        task("canary v0", JOB, dict(spec=job_hcl("canary", CANARY))),
        task("canary v1", JOB, dict(spec=job_hcl("canary", CANARY, version="2"))),
        task("promote", DEPLOYMENT, dict(job="canary", state="promoted", wait=True)),
        task("promote again", DEPLOYMENT, dict(job="canary", state="promoted")),
        task("pause successful", DEPLOYMENT, dict(job="canary", state="paused"), ignore_errors=True),
        task("promote without canaries", DEPLOYMENT, dict(id="{{ canary_v0.deployment.ID }}", state="promoted"),
             ignore_errors=True),
        task("wait successful", DEPLOYMENT, dict(id="{{ canary_v1.deployment.ID[:8] }}", wait=True)),
        # promote some groups: `a` first, then `a` and `b`; `plain` has no canaries
        task("groups v0", JOB, dict(spec=groups_hcl("groups"))),
        task("groups v1", JOB, dict(spec=groups_hcl("groups", version="2"))),
        task("promote a", DEPLOYMENT, dict(job="groups", state="promoted", groups=["a"])),
        task("promote a again", DEPLOYMENT, dict(job="groups", state="promoted", groups=["a"])),
        task("promote plain", DEPLOYMENT, dict(job="groups", state="promoted", groups=["plain"]), ignore_errors=True),
        task("promote a and b", DEPLOYMENT, dict(job="groups", state="promoted", groups=["a", "b"], wait=True)),
        # a deployment that waits forever (manual health): refused promotion, pause/resume, fail with auto_revert
        task("failing v0", JOB, dict(spec=job_hcl("failing", AUTO_REVERT))),
        task("failing v1", JOB, dict(spec=job_hcl("failing", MANUAL, version="2"), wait=False)),
        task("promote unhealthy", DEPLOYMENT, dict(job="failing", state="promoted"), ignore_errors=True),
        task("promote unknown group", DEPLOYMENT, dict(job="failing", state="promoted", groups=["nope"]),
             ignore_errors=True),
        task("pause", DEPLOYMENT, dict(job="failing", state="paused")),
        task("pause again", DEPLOYMENT, dict(job="failing", state="paused")),
        task("wait paused", DEPLOYMENT, dict(job="failing", wait=True), ignore_errors=True),
        task("resume", DEPLOYMENT, dict(job="failing", state="running")),
        task("fail", DEPLOYMENT, dict(job="failing", state="failed")),
        task("fail again", DEPLOYMENT, dict(id="{{ fail.deployment.ID }}", state="failed")),
        task("resume failed", DEPLOYMENT, dict(id="{{ fail.deployment.ID }}", state="running"), ignore_errors=True),
        task("wait failed", DEPLOYMENT, dict(id="{{ fail.deployment.ID }}", wait=True), ignore_errors=True),
        task("wait rollback", DEPLOYMENT, dict(job="failing", wait=True)),
        # revert there and back
        task("web v0", JOB, dict(spec=job_hcl("web", FAST))),
        task("web v1", JOB, dict(spec=job_hcl("web", FAST, version="2"))),
        task("revert to 0", REVERT, dict(name="web", version=0), diff=True),
        task("revert to 0 again", REVERT, dict(name="web", version=0)),
        task("revert to current", REVERT, dict(name="web", version=2)),
        task("revert enforced stale", REVERT, dict(name="web", version=1, enforce_prior_version=1), ignore_errors=True),
        task("revert back", REVERT, dict(name="web", version=1, enforce_prior_version=2)),
        # scale
        task("scale up", SCALE, dict(name="web", group="web", count=3, message="more")),
        task("scale up again", SCALE, dict(name="web", group="web", count=3)),
        task("scale stale", SCALE, dict(name="web", group="web", count=1, check_index=1), ignore_errors=True),
        task("scale down", SCALE, dict(name="web", group="web", count=1,
                                       check_index="{{ scale_up.job.JobModifyIndex }}")),
        task("scale down again", SCALE, dict(name="web", group="web", count=1)),
        # a group with a scaling block: Nomad refuses counts outside its bounds
        task("bounded", JOB, dict(spec=bounded_job())),
        task("scale above max", SCALE, dict(name="bounded", group="web", count=4), ignore_errors=True),
        task("scale below min", SCALE, dict(name="bounded", group="web", count=0), ignore_errors=True),
        task("scale to max", SCALE, dict(name="bounded", group="web", count=3)),
    ])]


def test_rollout_control(ansible_runner: AnsibleRunner):
    run = ansible_runner.playbook(control_play(), env={"NOMAD_TOKEN": MANAGEMENT}, verbosity=1)
    assert run.rc == 0, run.output

    assert run.task("canary v1")["deployment"]["requires_promotion"]
    promoted = run.task("promote")
    assert promoted["changed"] and promoted["deployment"]["Status"] == "successful"
    assert promoted["deployment"]["groups"]["web"]["promoted"] is True and len(promoted["summary"]) == 2
    assert not run.task("promote again")["changed"]
    assert "can't pause terminal deployment (status successful" in run.task("pause successful")["msg"]
    assert "has no canaries to promote" in run.task("promote without canaries")["msg"]
    waited = run.task("wait successful")
    assert not waited["changed"] and waited["deployment"]["Status"] == "successful"

    some = run.task("promote a")
    assert some["changed"] and some["deployment"]["Status"] == "running"
    assert [some["deployment"]["groups"][name]["promoted"] for name in ("a", "b")] == [True, False]
    assert not run.task("promote a again")["changed"]
    assert "group 'plain' has no canaries to promote" in run.task("promote plain")["msg"]
    both = run.task("promote a and b")
    assert both["changed"] and both["deployment"]["Status"] == "successful" and len(both["summary"]) == 3

    assert 'Task group "web" has 0/1 healthy allocations' in run.task("promote unhealthy")["msg"]
    assert "has no group 'nope'" in run.task("promote unknown group")["msg"]
    assert run.task("pause")["changed"] and run.task("pause")["deployment"]["Status"] == "paused"
    assert not run.task("pause again")["changed"]
    paused = run.task("wait paused")
    assert paused["_status"] == "ignored"
    assert "is paused (Deployment is paused) and ends only when resumed or failed" in paused["msg"]
    assert paused["deployment"]["Status"] == "paused"
    assert run.task("resume")["changed"] and run.task("resume")["deployment"]["Status"] == "running"
    failed = run.task("fail")
    assert failed["changed"] and failed["deployment"]["Status"] == "failed" and failed["reverted_job_version"] == 0
    assert "rolling back to job version 0" in failed["deployment"]["StatusDescription"]
    assert not run.task("fail again")["changed"]
    assert "can't resume terminal deployment (status failed" in run.task("resume failed")["msg"]
    report = run.task("wait failed")
    assert report["_status"] == "ignored" and "failing' version 1: deployment" in report["msg"]
    assert "failed_allocations" in report
    rollback = run.task("wait rollback")
    assert rollback["deployment"]["Status"] == "successful" and rollback["deployment"]["ID"] != failed["deployment"]["ID"]

    reverted = run.task("revert to 0")
    assert reverted["changed"] and reverted["job"]["Version"] == 2
    assert reverted["deployment"]["Status"] == "successful"
    assert 'Env[VERSION]: "2" => "1"' in reverted["diff"]["prepared"]
    assert not run.task("revert to 0 again")["changed"] and not run.task("revert to current")["changed"]
    stale = run.task("revert enforced stale")["msg"]
    assert stale == "job 'web' not reverted: Current job has version 2; enforcing version 1"
    back = run.task("revert back")
    assert back["changed"] and back["job"]["Version"] == 3

    up = run.task("scale up")
    assert up["changed"] and (up["previous_count"], up["count"]) == (2, 3) and len(up["summary"]) >= 3
    assert not run.task("scale up again")["changed"]
    assert "Enforcing job modify index 1: job exists with conflicting job modify index" in run.task("scale stale")["msg"]
    down = run.task("scale down")
    assert down["changed"] and down["job"]["JobModifyIndex"] > up["job"]["JobModifyIndex"]
    assert not run.task("scale down again")["changed"]
    assert run.task("scale above max")["msg"] == ("job 'bounded' not scaled: group count was greater than scaling policy "
                                                  "maximum: 4 > 3")
    assert run.task("scale below min")["msg"].endswith("group count was less than scaling policy minimum: 0 < 1")
    to_max = run.task("scale to max")
    assert to_max["changed"] and to_max["count"] == 3 and len(to_max["summary"]) == 3


def bad_input_play():
    return [dict(hosts="localhost", gather_facts=False, tasks=[
        task("setup", JOB, dict(spec=job_hcl("bad", AUTO_REVERT))),
        task("setup waiting", JOB, dict(spec=job_hcl("bad", MANUAL, version="2"), wait=False)),
        task("setup calm", JOB, dict(spec=job_hcl("calm", FAST))),
        task("reset", "ansible.builtin.uri", dict(url="{{ emulator }}/_emulator/requests", method="DELETE",
                                                  status_code=[200, 204])),
        task("check unknown job", DEPLOYMENT, dict(job="nobody", state="failed"), check_mode=True, ignore_errors=True),
        task("check fail", DEPLOYMENT, dict(job="bad", state="failed"), check_mode=True),
        task("check pause", DEPLOYMENT, dict(job="bad", state="paused"), check_mode=True),
        task("check revert", REVERT, dict(name="bad", version=0), check_mode=True, diff=True),
        task("check scale", SCALE, dict(name="calm", group="web", count=4), check_mode=True),
        task("scale during deployment", SCALE, dict(name="bad", group="web", count=4), ignore_errors=True),
        task("no deployment", DEPLOYMENT, dict(id="ffffffff-0000-4000-8000-000000000000"), ignore_errors=True),
        task("ambiguous", DEPLOYMENT, dict(id=""), ignore_errors=True),
        task("revert unknown job", REVERT, dict(name="nope", version=0), ignore_errors=True),
        task("revert unknown version", REVERT, dict(name="bad", version=7), ignore_errors=True),
        task("revert to current", REVERT, dict(name="bad", version=1)),
        task("scale unknown group", SCALE, dict(name="bad", group="nope", count=1), ignore_errors=True),
        task("scale negative", SCALE, dict(name="bad", group="web", count=-1), ignore_errors=True),
        task("scale reader", SCALE, dict(name="calm", group="web", count=3, token=READER), ignore_errors=True),
        task("fail reader", DEPLOYMENT, dict(job="bad", state="failed", token=READER), ignore_errors=True),
        task("after", DEPLOYMENT, dict(job="bad")),
        task("after scale", SCALE, dict(name="calm", group="web", count=2), check_mode=True),
    ])]


def test_bad_inputs_and_check_mode_write_nothing(ansible_runner: AnsibleRunner, integration_emulator):
    run = ansible_runner.playbook(bad_input_play(), env={"NOMAD_TOKEN": MANAGEMENT}, verbosity=4,
                                  extra_vars={"emulator": integration_emulator.address})
    assert run.rc == 0, run.output
    messages = {entry["task"]: entry["result"].get("msg", "") for entry in run.results}
    for name, message in messages.items():
        assert "\n" not in message and "Traceback" not in message, (name, message)
    assert messages["check unknown job"].startswith('job "nobody" not found')
    for name in ("check fail", "check pause"):
        assert run.task(name)["changed"] and run.task(name)["deployment"]["Status"] == "running", name
    check_revert = run.task("check revert")
    assert check_revert["changed"] and check_revert["job"]["Version"] == 1 and check_revert["eval_id"] is None
    assert 'Env[VERSION]: "2" => "1"' in check_revert["diff"]["prepared"]
    check_scale = run.task("check scale")
    assert check_scale["changed"] and check_scale["job"]["Version"] == 0 and check_scale["previous_count"] == 2
    assert messages["scale during deployment"].startswith("job 'bad' not scaled: job scaling blocked due to active deployment")
    assert messages["no deployment"].startswith('deployment "ffffffff-0000-4000-8000-000000000000" not found')
    assert 'deployment ID prefix "" matches' in messages["ambiguous"]
    assert messages["revert unknown job"].startswith('job "nope" not found')
    assert messages["revert unknown version"] == 'job "bad" in namespace "default" at version 7 not found'
    assert not run.task("revert to current")["changed"]
    assert messages["scale unknown group"].startswith("job 'bad' not scaled: task group \"nope\" specified for scaling")
    assert "count can't be negative" in messages["scale negative"]
    assert "403" in messages["scale reader"] and "403" in messages["fail reader"]
    counts = integration_emulator.control.requests()
    writes = sorted(request for request in counts
                    if request.startswith(("POST", "PUT", "DELETE")) and not request.endswith("/plan"))
    assert len(writes) == 2 and "/v1/deployment/fail/" in writes[0] and writes[1] == "POST /v1/job/calm/scale", counts
    # (the reader's two, refused with 403)
    after = run.task("after")
    assert not after["changed"] and after["deployment"]["Status"] == "running"
    assert not run.task("after scale")["changed"] and run.task("after scale")["job"]["Version"] == 0
    assert MANAGEMENT not in run.output and READER not in run.output
