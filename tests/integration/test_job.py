# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nomad_job and nomad_job_info against the emulator (tests/emulator/scenarios/jobs-module.yml: jobs run as real
processes, ACLs on): HCL2 with variables and variable files, JSON and dicts, idempotence by Nomad's plan, check
mode and --diff, check_index, preserve_counts, batch jobs, blocked placements, stop/purge, and every bad input as
one line with nothing registered. Few playbook runs with many tasks each, so that the file stays fast."""

from __future__ import annotations

import requests

from tests.integration.conftest import AnsibleRunner

EMULATOR_SCENARIO = "jobs-module.yml"
MANAGEMENT = "00000000-0000-4000-8000-000000000001"
READER = "00000000-0000-4000-8000-000000000002"
JOB = "nomadops.nomad.nomad_job"
INFO = "nomadops.nomad.nomad_job_info"

WEB_HCL = '''variable "greeting" {
  type = string
}

variable "replicas" {
  type    = number
  default = 1
}

job "web" {
  datacenters = ["dc1"]

  group "app" {
    count = var.replicas

    task "server" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "echo ${var.greeting}; trap 'exit 0' TERM; while :; do sleep 1; done"]
      }

      env {
        GREETING = var.greeting
      }

      kill_timeout = "2s"
    }
  }
}
'''

# The same job, reformatted (comments, spacing, attribute order): Nomad's plan sees no change.
WEB_HCL_REFORMATTED = '''# reformatted
variable "replicas" {
  default = 1
  type = number
}
variable "greeting" { type = string }
job "web" {
  datacenters = [ "dc1" ]
  group "app" {
    count = var.replicas
    task "server" {
      kill_timeout = "2s"
      driver = "raw_exec"
      env {
        GREETING = var.greeting
      }
      config {
        args    = ["-c", "echo ${var.greeting}; trap 'exit 0' TERM; while :; do sleep 1; done"]
        command = "/bin/sh"
      }
    }
  }
}
'''

BATCH_HCL = '''job "JOBID" {
  type        = "batch"
  datacenters = ["dc1"]

  group "run" {
    restart {
      attempts = 0
    }

    task "step" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "echo starting JOBID; SCRIPT"]
      }
    }
  }
}
'''

BIG_HCL = '''job "big" {
  datacenters = ["dc1"]

  group "cache" {
    count = 2

    task "redis" {
      driver = "raw_exec"

      config {
        command = "/bin/sleep"
        args    = ["600"]
      }

      resources {
        memory = 100000
      }
    }
  }
}
'''

FILE_FUNCTION_HCL = WEB_HCL.replace('GREETING = var.greeting', 'GREETING = file("greeting.txt")')
BROKEN_HCL = WEB_HCL.replace('  group "app" {', '  group "app" {{')


def write_files(workdir):
    files = workdir / "files"
    files.mkdir(exist_ok=True)
    (files / "web.nomad.hcl").write_text(WEB_HCL)
    (files / "web.reformatted.nomad.hcl").write_text(WEB_HCL_REFORMATTED)
    (files / "base.vars.hcl").write_text('greeting = "hello"\nreplicas = 1\n')
    (files / "prod.vars.hcl").write_text('replicas = 2\n')
    (files / "batch-ok.nomad.hcl").write_text(BATCH_HCL.replace("JOBID", "report").replace("SCRIPT", "echo done"))
    (files / "batch-fail.nomad.hcl").write_text(BATCH_HCL.replace("JOBID", "migrate").replace(
        "SCRIPT", "echo 'error: table users is locked' >&2; exit 3"))
    (files / "big.nomad.hcl").write_text(BIG_HCL)
    (files / "file-function.nomad.hcl").write_text(FILE_FUNCTION_HCL)
    (files / "broken.nomad.hcl").write_text(BROKEN_HCL)
    role = workdir / "roles" / "web" / "templates"
    role.mkdir(parents=True, exist_ok=True)
    (role / "web.nomad.hcl").write_text(WEB_HCL)
    tasks = workdir / "roles" / "web" / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "main.yml").write_text(
        "- name: deploy from the role\n"
        "  nomadops.nomad.nomad_job:\n"
        "    src: web.nomad.hcl\n"
        "    variable_files: [base.vars.hcl, prod.vars.hcl]\n"
        "  register: role_deploy\n")


AS_JSON = "{{ {'Job': current.jobs[0] | combine({'ID': 'web-json', 'Name': 'web-json'})} | to_json }}"


def task(name, module, args, **extra):
    return dict(name=name, **{module: args}, register=name.replace(" ", "_").replace("-", "_"), **extra)


def lifecycle_play(address):
    web = dict(src="web.nomad.hcl", variable_files=["base.vars.hcl", "prod.vars.hcl"])
    scale = {"ansible.builtin.uri": dict(
        url=f"{address}/v1/job/web/scale", method="POST", body_format="json",
        body={"Count": 3, "Target": {"Group": "app"}}, headers={"X-Nomad-Token": "{{ lookup('env', 'NOMAD_TOKEN') }}"}),
        "name": "scale to 3", "no_log": True}
    return [dict(hosts="localhost", gather_facts=False, tasks=[
        {"name": "role", "ansible.builtin.include_role": {"name": "web"}},
        task("unchanged", JOB, web),
        task("reformatted", JOB, dict(web, src="web.reformatted.nomad.hcl")),
        task("check mode change", JOB, dict(web, variables={"greeting": "bonjour"}), check_mode=True, diff=True),
        task("stale index", JOB, dict(web, variables={"greeting": "bonjour"}, check_index=1), ignore_errors=True),
        task("guarded change", JOB, dict(web, variables={"greeting": "bonjour"},
                                         check_index="{{ check_mode_change.plan.job_modify_index }}")),
        task("create only on existing", JOB, dict(web, variables={"greeting": "bonjour"}, check_index=0), ignore_errors=True),
        task("versions", INFO, dict(name="web", versions=True, submission=True, summary=True)),
        scale,
        task("preserved", JOB, dict(web, variables={"greeting": "bonjour"}, preserve_counts=True)),
        task("not preserved", JOB, dict(web, variables={"greeting": "bonjour"}), check_mode=True),
        task("current", INFO, dict(name="web")),
        task("as dict", JOB, dict(spec="{{ current.jobs[0] }}")),
        task("as json", JOB, dict(spec=AS_JSON, format="json")),
        task("batch ok", JOB, dict(src="batch-ok.nomad.hcl")),
        task("batch fail", JOB, dict(src="batch-fail.nomad.hcl", diagnose_lines=5), ignore_errors=True),
        task("blocked", JOB, dict(src="big.nomad.hcl"), ignore_errors=True),
        task("stop", JOB, dict(name="web-json", state="absent")),
        task("stop again", JOB, dict(name="web-json", state="absent")),
        task("start again", JOB, dict(spec=AS_JSON, wait=False)),
        task("stop once more", JOB, dict(name="web-json", state="absent")),
        task("purge", JOB, dict(name="web-json", state="absent", purge=True)),
        task("purge again", JOB, dict(name="web-json", state="absent", purge=True)),
        task("gone", INFO, dict(name="web-json")),
        task("listed", INFO, dict(prefix="web", fields=["ID", "Type", "Status"])),
        task("everywhere", INFO, dict(name="web", namespace="*", fields=["ID", "Namespace", "Version"])),
    ])]


def test_job_lifecycle(ansible_runner: AnsibleRunner, integration_emulator):
    write_files(ansible_runner.workdir)
    run = ansible_runner.playbook(lifecycle_play(integration_emulator.address), env={"NOMAD_TOKEN": MANAGEMENT},
                                  verbosity=1)
    assert run.rc == 0, run.output

    role = run.task("deploy from the role")
    assert role["changed"] and role["job"]["Version"] == 0 and len(role["summary"]) == 2
    assert all(entry["client_status"] == "running" for entry in role["summary"])
    assert "job 'web' version 0: 2 of 2 placed, 2 running, 0 failed" in run.output  # progress at -v
    assert not run.task("unchanged")["changed"] and run.task("unchanged")["eval_id"] is None
    assert not run.task("reformatted")["changed"]

    planned = run.task("check mode change")
    assert planned["changed"] and planned["job"]["Version"] == 0 and planned["eval_id"] is None
    assert '+/- Env[GREETING]: "hello" => "bonjour"' in planned["diff"]["prepared"]
    assert 'Task Group: "app" (2 create/destroy update)' in planned["diff"]["prepared"]

    stale = run.task("stale index")
    current_index = planned["plan"]["job_modify_index"]
    assert stale["_status"] == "ignored"
    assert stale["msg"] == ("job 'web' not registered: Enforcing job modify index 1: job exists with conflicting job modify "
                            f"index: {current_index}")
    guarded = run.task("guarded change")
    assert guarded["changed"] and guarded["job"]["Version"] == 1
    assert "Enforcing job modify index 0: job already exists" in run.task("create only on existing")["msg"]

    job = run.task("versions")["jobs"][0]
    assert [version["Version"] for version in job["Versions"]] == [1, 0]  # check mode and refusals registered nothing
    assert job["Submission"]["Format"] == "hcl2" and job["Submission"]["Source"] == WEB_HCL
    assert job["Submission"]["Variables"] == 'greeting = "bonjour"\nreplicas = 2\n'
    assert job["Summary"]["app"]["Running"] == 2

    assert not run.task("preserved")["changed"]
    assert run.task("not preserved")["changed"]  # the count would go back from 3 to 2
    assert not run.task("as dict")["changed"]
    as_json = run.task("as json")
    assert as_json["changed"] and as_json["job"]["ID"] == "web-json" and len(as_json["summary"]) == 3

    assert run.task("batch ok")["changed"] and run.task("batch ok")["summary"][0]["client_status"] == "complete"
    failed = run.task("batch fail")
    assert failed["_status"] == "ignored" and failed["msg"].startswith("job 'migrate' version 0: 1 allocation(s) failed")
    report = failed["failed_allocations"][0]
    assert report["summary"]["client_status"] == "failed"
    step = report["tasks"][0]
    assert step["failed"] and step["stderr_lines"] == ["error: table users is locked"]
    assert step["stdout_lines"] == ["starting migrate"]
    assert [event["message"] for event in step["events"][-2:]] == ["Exit Code: 3", "Policy allows no restarts"]

    blocked = run.task("blocked")
    assert blocked["msg"] == ("job 'big' version 0: placement failed: group \"cache\": 0 of 2 placed: "
                              "resources exhausted on 1 nodes (memory)")

    assert run.task("stop")["changed"] and run.task("stop")["job"]["Stop"] is True
    assert not run.task("stop again")["changed"]
    started = run.task("start again")
    assert started["changed"] and started["job"]["Stop"] is False and started["plan"]["diff_type"] == "Edited"
    assert run.task("stop once more")["changed"]
    assert run.task("purge")["changed"] and run.task("purge")["job"] is None
    assert not run.task("purge again")["changed"]
    gone = run.task("gone")
    assert gone["jobs"] == [] and any('job "web-json" not found' in warning for warning in gone["warnings"])
    assert run.task("listed")["jobs"] == [{"ID": "web", "Type": "service", "Status": "running"}]
    assert run.task("everywhere")["jobs"] == [{"ID": "web", "Namespace": "default", "Version": 2}]


def bad_input_play():
    web = dict(src="web.nomad.hcl", variables={"greeting": "hello"})
    return [dict(hosts="localhost", gather_facts=False, tasks=[
        task("syntax", JOB, dict(src="broken.nomad.hcl", variables={"greeting": "hello"}), ignore_errors=True),
        task("missing variable", JOB, dict(src="web.nomad.hcl"), ignore_errors=True),
        task("mistyped variable", JOB, dict(web, variables={"greeting": "x", "replicas": "many"}), ignore_errors=True),
        task("undeclared variable", JOB, dict(web, variables={"greeting": "x", "colour": "red"}), ignore_errors=True),
        task("misspelt variable", JOB, dict(web, variables={"greting": "x"}), ignore_errors=True),
        task("file function", JOB, dict(src="file-function.nomad.hcl", variables={"greeting": "x"}), ignore_errors=True),
        task("not a job", JOB, dict(spec='{"Foo": 1}'), ignore_errors=True),
        task("other name", JOB, dict(web, name="api"), ignore_errors=True),
        task("no src", JOB, dict(src="nowhere.nomad.hcl"), ignore_errors=True),
        task("no namespace", JOB, dict(web, namespace="nope"), ignore_errors=True),
        task("reader token", JOB, dict(web, token=READER), ignore_errors=True),
        task("after", INFO, {}),
    ])]


def test_bad_inputs_fail_with_one_line_and_register_nothing(ansible_runner: AnsibleRunner, integration_emulator):
    write_files(ansible_runner.workdir)
    integration_emulator.control.reset_requests()
    run = ansible_runner.playbook(bad_input_play(), env={"NOMAD_TOKEN": MANAGEMENT}, verbosity=4)
    messages = {entry["task"]: entry["result"].get("msg", "") for entry in run.results}
    for name, message in messages.items():
        assert "\n" not in message and "Traceback" not in message, (name, message)
    assert messages["syntax"].startswith("broken.nomad.hcl: input.hcl:13,")
    assert 'Unset variable "greeting"' in messages["missing variable"]
    assert "Invalid value for variable" in messages["mistyped variable"]
    assert messages["undeclared variable"].startswith('web.nomad.hcl declares no variable "colour"')
    assert messages["misspelt variable"].startswith('web.nomad.hcl declares no variable "greting" (did you mean "greeting"?)')
    assert "file functions" in messages["file function"] and "lookup('ansible.builtin.file'" in messages["file function"]
    assert "is not a Nomad job" in messages["not a job"]
    assert messages["other name"].startswith("name 'api' differs from the job ID 'web'")
    assert messages["no src"].startswith("src 'nowhere.nomad.hcl' not found on the controller")
    assert messages["no namespace"] == f'namespace "nope" not found at {integration_emulator.address}'
    assert "403" in messages["reader token"] and "submit-job" in messages["reader token"]
    counts = integration_emulator.control.requests()
    assert not [request for request in counts if (request.startswith(("POST /v1/job/", "DELETE")) or request == "POST /v1/jobs")
                and not request.endswith("/plan")], counts
    assert MANAGEMENT not in run.output and READER not in run.output


def test_adhoc_src_from_the_current_directory(ansible_runner: AnsibleRunner, integration_emulator):
    (ansible_runner.workdir / "adhoc.nomad.hcl").write_text(
        BATCH_HCL.replace("JOBID", "adhoc").replace("SCRIPT", "echo done"))
    run = ansible_runner.adhoc(JOB, "src=adhoc.nomad.hcl", env={"NOMAD_TOKEN": MANAGEMENT})
    assert run.rc == 0 and '"changed": true' in run.output, run.output
    job = requests.get(f"{integration_emulator.address}/v1/job/adhoc", headers={"X-Nomad-Token": MANAGEMENT}, timeout=10)
    assert job.json()["Status"] in ("running", "dead")
