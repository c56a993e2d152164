# Copyright (c) nomadops.nomad contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Revert and scale of jobs: reference nomad-jobs-behaviour.md §6.1, §6.2 and §4.7 (named per test)."""
from __future__ import annotations

from jobfiles import parse, register, web_hcl


def get_job(api, job_id: str) -> dict:
    response = api.get(f"/v1/job/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_revert_registers_the_old_spec_as_a_new_version(jobs_api):
    """§6.1: errors (400 before the RPC, 500 texts after), EnforcePriorVersion, new version with the old spec
    and the old version's submission; setMeta headers."""
    hcl = web_hcl("rev")
    register(jobs_api, parse(jobs_api, hcl), Submission={"Source": hcl, "Format": "hcl2"})
    register(jobs_api, parse(jobs_api, hcl.replace('FOO = "bar"', 'FOO = "v1"')))
    cases = [({}, 400, "JobID must be specified"), ({"JobID": "other"}, 400, "Job ID does not match"),
             ({"JobID": "rev", "JobVersion": 1}, 500, "can't revert to current version"),
             ({"JobID": "rev", "JobVersion": 7}, 500, 'job "rev" in namespace "default" at version 7 not found'),
             ({"JobID": "rev", "JobVersion": 0, "EnforcePriorVersion": 0}, 500,
              "Current job has version 1; enforcing version 0")]
    for body, status, text in cases:
        response = jobs_api.post("/v1/job/rev/revert", json=body)
        assert (response.status_code, response.text) == (status, text)
    missing = jobs_api.post("/v1/job/nosuch/revert", json={"JobID": "nosuch"})
    assert (missing.status_code, missing.text) == (500, 'job "nosuch" not found')
    response = jobs_api.put("/v1/job/rev/revert", json={"JobID": "rev", "JobVersion": 0, "EnforcePriorVersion": 1})
    assert response.status_code == 200, response.text
    assert response.headers["X-Nomad-KnownLeader"] == "false"
    job = get_job(jobs_api, "rev")
    assert job["Version"] == 2 and job["TaskGroups"][0]["Tasks"][0]["Env"] == {"FOO": "bar"}
    assert jobs_api.get("/v1/job/rev/submission", params={"version": "2"}).json()["Source"] == hcl
    assert jobs_api.get("/v1/job/rev/revert").status_code == 405


def test_scale_writes_a_new_version_and_records_events(jobs_api):
    """§6.2: checks and their codes, unconditional new version, `job-scaling` eval, events; §4.7 status."""
    register(jobs_api, parse(jobs_api, web_hcl("sc")))
    cases = [({"Target": {"Job": "x", "Group": "web"}}, 400, "job ID in payload did not match URL"),
             ({"Target": {"Group": "web", "Namespace": "prod"}, "Count": 1}, 400,
              "namespace in payload did not match header"),
             ({"Count": 1}, 400, "missing task group name for scaling action"),
             ({"Target": {"Group": "web"}, "Count": -1}, 400, "scaling action count can't be negative"),
             ({"Target": {"Group": "web"}, "Count": 1, "Error": True}, 400,
              "scaling action should not contain count if error is true"),
             ({"Target": {"Group": "db"}, "Count": 1}, 400,
              'task group "db" specified for scaling does not exist in job')]
    for body, status, text in cases:
        response = jobs_api.post("/v1/job/sc/scale", json=body)
        assert (response.status_code, response.text) == (status, text)
    missing = jobs_api.post("/v1/job/nosuch/scale", json={"Target": {"Group": "web"}, "Count": 1})
    assert (missing.status_code, missing.text) == (404, 'job "nosuch" not found')
    before = get_job(jobs_api, "sc")
    result = jobs_api.post("/v1/job/sc/scale", json={"Target": {"Group": "web"}, "Count": 3, "Message": "more"}).json()
    assert result["JobModifyIndex"] < result["EvalCreateIndex"] < result["Index"]
    job = get_job(jobs_api, "sc")
    assert (job["Version"], job["TaskGroups"][0]["Count"]) == (before["Version"] + 1, 3)
    evaluation = jobs_api.get(f"/v1/evaluation/{result['EvalID']}").json()
    assert evaluation["TriggeredBy"] == "job-scaling"
    same = jobs_api.post("/v1/job/sc/scale", json={"Target": {"Group": "web"}, "Count": 3}).json()
    assert get_job(jobs_api, "sc")["Version"] == before["Version"] + 2 and same["EvalID"]
    status = jobs_api.get("/v1/job/sc/scale").json()
    web = status["TaskGroups"]["web"]
    assert (web["Desired"], web["Placed"], web["Running"], web["Healthy"]) == (3, 3, 3, 3)
    assert [event["PreviousCount"] for event in web["Events"]] == [3, 2]
    assert web["Events"][1]["Message"] == "more" and web["Events"][1]["EvalID"] == result["EvalID"]
    missing_status = jobs_api.get("/v1/job/nosuch/scale")
    assert (missing_status.status_code, missing_status.text) == (404, "job not found")


def test_scale_keeps_within_the_scaling_block_bounds(jobs_api):
    """§6.2: a group with a `scaling` block refuses counts below its Min or above its Max (400, Nomad's texts)."""
    job = parse(jobs_api, web_hcl("bounded"))
    job["TaskGroups"][0]["Scaling"] = {"Min": 1, "Max": 3, "Enabled": True}
    register(jobs_api, job)
    for count, text in ((4, "group count was greater than scaling policy maximum: 4 > 3"),
                        (0, "group count was less than scaling policy minimum: 0 < 1")):
        response = jobs_api.post("/v1/job/bounded/scale", json={"Target": {"Group": "web"}, "Count": count})
        assert (response.status_code, response.text) == (400, text)
    response = jobs_api.post("/v1/job/bounded/scale", json={"Target": {"Group": "web"}, "Count": 3})
    assert response.status_code == 200, response.text
    assert get_job(jobs_api, "bounded")["TaskGroups"][0]["Count"] == 3
