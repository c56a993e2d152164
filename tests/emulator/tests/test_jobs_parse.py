# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""POST /v1/jobs/parse: reference nomad-jobs-behaviour.md §1 (sections named per test)."""
from __future__ import annotations

from conftest import MANAGEMENT, Api
from jobfiles import parse, web_hcl

READER = "00000000-0000-4000-8000-000000000002"
LIFECYCLE_ONLY = "00000000-0000-4000-8000-000000000003"


def parse_error(api, hcl: str, variables: str = "") -> str:
    response = api.post("/v1/jobs/parse", json={"JobHCL": hcl, "Variables": variables})
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def test_parse_maps_blocks_and_keeps_unresolved_references(jobs_api):
    """§1.1 step 8 (sorted keys), §1.2 (durations in ns, `${NOMAD_ALLOC_ID}` kept, `$${` escape), §1.3 defaults."""
    response = jobs_api.post("/v1/jobs/parse", json={"JobHCL": web_hcl("p1"), "Variables": 'image = "redis:7"'})
    assert response.status_code == 200, response.text
    assert response.text.startswith('{"Affinities":null,"AllAtOnce":null,')  # sorted keys, unset = null
    job = response.json()
    assert job["ID"] == job["Name"] == "p1"
    group = job["TaskGroups"][0]
    assert group["Count"] == 2
    assert group["RestartPolicy"] == {"Attempts": 1, "Delay": 10_000_000_000}
    task = group["Tasks"][0]
    assert task["Config"] == {"command": "/bin/sh", "args": ["-c", "echo redis:7 ${HOME} ${NOMAD_ALLOC_ID}"]}
    assert task["Env"] == {"FOO": "bar"}
    assert task["Resources"] == {"CPU": 100, "MemoryMB": 128}
    assert group["Update"] is None and task["KillTimeout"] is None
    assert job["Priority"] is None and job["Type"] is None  # not canonicalised


def test_parse_canonicalize_fills_sdk_defaults(jobs_api):
    """§1.4: job, update, group, restart merge, reschedule, migrate, task defaults."""
    job = parse(jobs_api, web_hcl("p2"))
    assert (job["Namespace"], job["Priority"], job["Region"], job["Type"]) == ("default", 50, "global", "service")
    assert job["Update"]["MinHealthyTime"] == 10_000_000_000 and job["Update"]["MaxParallel"] == 1
    group = job["TaskGroups"][0]
    assert group["RestartPolicy"] == {"Attempts": 1, "Interval": 1_800_000_000_000, "Delay": 10_000_000_000,
                                      "Mode": "fail", "RenderTemplates": False}
    assert group["ReschedulePolicy"]["DelayFunction"] == "exponential" and group["ReschedulePolicy"]["Unlimited"]
    assert group["Migrate"] == {"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10_000_000_000,
                                "HealthyDeadline": 300_000_000_000}
    assert group["EphemeralDisk"] == {"Sticky": False, "Migrate": False, "SizeMB": 300}
    task = group["Tasks"][0]
    assert task["KillTimeout"] == 5_000_000_000
    assert task["LogConfig"] == {"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False}
    assert task["RestartPolicy"] == group["RestartPolicy"]


def test_parse_method_and_empty_spec(jobs_api):
    """§0.1 (PUT/POST only) and §1.1 step 5 (`Job spec is empty`, body decode errors)."""
    assert jobs_api.get("/v1/jobs/parse").status_code == 405
    assert jobs_api.get("/v1/jobs/parse").text == "Invalid method"
    assert parse_error(jobs_api, "") == "Job spec is empty"
    response = jobs_api.post("/v1/jobs/parse", data=b"")
    assert (response.status_code, response.text) == (400, "Request body is empty")


def test_parse_syntax_error_has_hcl_diagnostic(jobs_api):
    """§1.3: syntax errors are HCL diagnostics `input.hcl:<range>: <Summary>; <Detail>` after the prefix."""
    text = parse_error(jobs_api, 'job "x" {\n  group "a" {\n')
    assert text.startswith("Failed to parse job: input.hcl:2,")
    assert "Unclosed configuration block; There is no closing brace for this block" in text


def test_parse_unset_variable(jobs_api):
    """§1.3 missing required variable: `<nil>: Unset variable` with the 1.10 documentation URL."""
    hcl = 'variable "region" {\n  type = string\n}\njob "x" {\n  region = var.region\n}\n'
    assert parse_error(jobs_api, hcl) == (
        'Failed to parse job: <nil>: Unset variable "region"; A used variable must be set or have a default value; '
        "see https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables for details.")


def test_parse_variable_type_mismatch_and_unknown_variable(jobs_api):
    """§1.3 type mismatch (range of the value in `Variables`) and unknown variables ignored (not strict)."""
    hcl = 'variable "count" {\n  type = number\n}\njob "x" {\n  group "g" {\n    count = var.count\n  }\n}\n'
    assert parse_error(jobs_api, hcl, 'count = "abc"') == (
        "Failed to parse job: input.hcl:1,9-14: Invalid value for variable; The value for count is not compatible "
        "with the variable's type constraint: a number is required.")
    job = parse(jobs_api, hcl, 'count = 3\nunknown = "x"\n')
    assert job["TaskGroups"][0]["Count"] == 3


def test_parse_file_functions_are_disabled(jobs_api):
    """§1.2 (file-system functions are stubs whose type check fails with `filesystem function disabled`), §1.3
    (HCL's `Error in function call` diagnostic on `name(`, decode errors joined by newlines); a call in a
    comment or inside a plain string literal is no call."""
    hcl = ('job "x" {\n  # file("comment.sh")\n  group "g" {\n    task "t" {\n      driver = "raw_exec"\n'
           '      config {\n        command = file("run.sh")\n        args    = ["${filebase64("a.bin")}", "file(x)"]\n'
           '      }\n    }\n  }\n}\n')
    assert parse_error(jobs_api, hcl) == (
        'Failed to parse job: input.hcl:7,19-24: Error in function call; Call to function "file" failed: '
        "filesystem function disabled.\n"
        'input.hcl:8,23-34: Error in function call; Call to function "filebase64" failed: filesystem function '
        "disabled.")
    literal = hcl.replace('file("run.sh")', '"run.sh"').replace('"${filebase64("a.bin")}"', '"a"')
    assert parse(jobs_api, literal)["TaskGroups"][0]["Tasks"][0]["Config"]["args"] == ["a", "file(x)"]


def test_parse_heredoc_strings(jobs_api):
    """§1.2 (expressions evaluated as jobspec2 does): a heredoc is a template whose lines keep their newline,
    `<<-` strips the common indentation, `${var.x}` is substituted, unknown references stay literal."""
    hcl = ('variable "name" {\n  default = "web"\n}\njob "x" {\n  group "g" {\n    task "t" {\n'
           '      driver = "raw_exec"\n      config {\n        command = "/bin/sh"\n'
           '        args = ["-c", <<-SCRIPT\n          echo "${var.name}"\n            echo $HOME ${NOMAD_ALLOC_ID}\n'
           '        SCRIPT\n        ]\n      }\n    }\n  }\n}\n')
    args = parse(jobs_api, hcl)["TaskGroups"][0]["Tasks"][0]["Config"]["args"]
    assert args == ["-c", 'echo "web"\n  echo $HOME ${NOMAD_ALLOC_ID}\n']


def test_parse_unsupported_block_is_a_clear_400(jobs_api):
    """Emulator rule (README "Jobs"): blocks outside the supported set are refused, never dropped."""
    hcl = 'job "x" {\n  group "g" {\n    network {\n      mode = "bridge"\n    }\n  }\n}\n'
    text = parse_error(jobs_api, hcl)
    assert text.startswith("Failed to parse job: input.hcl: the emulator does not support 'network' in group 'g'")


def test_parse_acl(jobs_acl_emulator):
    """§1.1 step 4: `parse-job` (part of `read`) or `submit-job`; `namespace=*` passes if any namespace grants it."""
    hcl = web_hcl("acl")
    body = {"JobHCL": hcl}
    assert Api(jobs_acl_emulator, token=READER).post("/v1/jobs/parse", json=body).status_code == 200
    assert Api(jobs_acl_emulator, token=MANAGEMENT).post("/v1/jobs/parse", json=body).status_code == 200
    denied = Api(jobs_acl_emulator, token=LIFECYCLE_ONLY).post("/v1/jobs/parse", json=body)
    assert (denied.status_code, denied.text) == (403, "Permission denied")
    in_prod = Api(jobs_acl_emulator, token=READER).post("/v1/jobs/parse", json=body, params={"namespace": "prod"})
    assert in_prod.status_code == 403
    anywhere = Api(jobs_acl_emulator, token=READER).post("/v1/jobs/parse", json=body, params={"namespace": "*"})
    assert anywhere.status_code == 200
    # the ACL check runs before the body is read
    empty = Api(jobs_acl_emulator, token=LIFECYCLE_ONLY).post("/v1/jobs/parse", json={"JobHCL": ""})
    assert empty.status_code == 403
